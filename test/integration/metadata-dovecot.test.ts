/**
 * chatmail-metadata behind a real dovecot: an IMAP client logs in, asks GETMETADATA, and gets fresh
 * TURN credentials that verify with the secret and that a real coturn accepts.
 */
import { execFile } from 'node:child_process'
import type { ImapFlow } from 'imapflow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { METADATA_KEYS, parseTurnMetadata } from '../../src/protocols/metadata-values.js'
import { verifyTurnCredential } from '../../src/protocols/turn-rest.js'
import { type Coturn, startCoturn } from '../helpers/coturn.js'
import { type Dovecot, logWith, type MetadataService, startDovecot, startMetadataService } from '../helpers/dovecot.js'
import { imapsClient } from '../helpers/imap-login.js'

type Tok = { type: string; value: unknown } | null | Tok[]
interface Exec {
  exec(
    cmd: string,
    attrs: Tok[],
    opts?: { untagged?: Record<string, (u: { attributes: Tok[] }) => Promise<void>> },
  ): Promise<{ next(): void }>
}

function tokenText(t: Tok | undefined): string | null {
  if (!t || Array.isArray(t)) return null
  return Buffer.isBuffer(t.value) ? t.value.toString() : String(t.value)
}

async function getMetadata(client: ImapFlow, mailbox: string, keys: string[]): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {}
  const r = await (client as unknown as Exec).exec(
    'GETMETADATA',
    [{ type: 'STRING', value: mailbox }, keys.map((k) => ({ type: 'ATOM', value: k }))],
    {
      untagged: {
        METADATA: async (u) => {
          const list = (u.attributes[1] ?? []) as Tok[]
          for (let i = 0; i + 1 < list.length; i += 2) out[tokenText(list[i]) as string] = tokenText(list[i + 1])
        },
      },
    },
  )
  r.next()
  return out
}

async function setMetadata(client: ImapFlow, mailbox: string, key: string, value: string): Promise<void> {
  const r = await (client as unknown as Exec).exec('SETMETADATA', [
    { type: 'STRING', value: mailbox },
    [
      { type: 'ATOM', value: key },
      { type: 'STRING', value },
    ],
  ])
  r.next()
}

const login = (d: Dovecot): Promise<ImapFlow> => imapsClient(d.host, d.user, d.password, d.imapsPort)

function uclient(port: number, user: string, pass: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'turnutils_uclient',
      ['-y', '-n', '3', '-m', '1', '-u', user, '-w', pass, '-p', String(port), '127.0.0.1'],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
        resolve({ code, out: `${stdout}${stderr}` })
      },
    )
  })
}

describe('chatmail-metadata behind dovecot', () => {
  let service: MetadataService
  let dovecot: Dovecot
  let coturn: Coturn
  let client: ImapFlow
  const relay = 'https://relay.example.org'

  beforeAll(async () => {
    service = await startMetadataService({
      turnHost: '127.0.0.1',
      ttl: '1d',
      irohRelayUrl: relay,
      verbose: true,
      maxSmtpRecipients: 50,
    })
    // /shared/admin and /shared/comment are dovecot's own (it never asks the dict for them): the
    // deploy sets them in dovecot.conf as here.
    dovecot = await startDovecot({
      metadata: { kind: 'proxy', socket: service.socket },
      extraConfig: 'mail_server_admin = mailto:admin@example.org\nmail_server_comment = A chatmail server for tests',
    })
    coturn = await startCoturn({ secret: service.secret })
    service.writeConfig({ turnPort: coturn.port })
    await service.reload()
    client = await login(dovecot)
  })

  afterAll(async () => {
    await client?.logout().catch(() => {})
    await dovecot?.stop()
    await coturn?.stop()
    await service?.stop()
  })

  it('serves the operator contact, the comment and the recipient limit Delta Chat asks for', async () => {
    const got = await getMetadata(client, '', [
      METADATA_KEYS.admin,
      METADATA_KEYS.comment,
      METADATA_KEYS.maxsmtprecipients,
    ])
    expect(got).toEqual({
      [METADATA_KEYS.admin]: 'mailto:admin@example.org',
      [METADATA_KEYS.comment]: 'A chatmail server for tests',
      [METADATA_KEYS.maxsmtprecipients]: '50',
    })
  })

  it('advertises METADATA after login', () => {
    expect(client.capabilities.has('METADATA')).toBe(true)
  })

  it('serves the relay URL and NIL for unknown keys', async () => {
    const got = await getMetadata(client, '', [METADATA_KEYS.irohrelay, '/shared/vendor/deltachat/nosuchkey'])
    expect(got[METADATA_KEYS.irohrelay]).toBe(relay)
    expect(got['/shared/vendor/deltachat/nosuchkey']).toBeNull()
  })

  it('mints fresh credentials per lookup that verify with the secret and that coturn accepts', async () => {
    const first = (await getMetadata(client, '', [METADATA_KEYS.turn]))[METADATA_KEYS.turn]
    await new Promise((r) => setTimeout(r, 1100))
    const second = (await getMetadata(client, '', [METADATA_KEYS.turn]))[METADATA_KEYS.turn]
    const creds = [first, second].map((v) => {
      const parsed = parseTurnMetadata(v ?? '')
      if (!parsed.ok) throw new Error(`${v}: ${parsed.reason}`)
      return parsed.value
    })
    const [a, b] = creds as [(typeof creds)[0], (typeof creds)[0]]
    expect(a.host).toBe('127.0.0.1')
    expect(a.port).toBe(coturn.port)
    expect(b.username).not.toBe(a.username)
    const now = Date.now()
    for (const c of [a, b]) {
      const v = verifyTurnCredential(service.secret, c.username, c.password, now)
      expect(v).toMatchObject({ ok: true })
      expect(c.expires).toBeGreaterThan(now / 1000 + 86_400 - 60)
      expect(c.expires).toBeLessThanOrEqual(now / 1000 + 86_400 + 1)
    }
    const accepted = await uclient(coturn.port, b.username, b.password)
    expect(accepted.code, accepted.out).toBe(0)
    const rejected = await uclient(coturn.port, b.username, `x${b.password.slice(1)}`)
    expect(rejected.code).not.toBe(0)
    expect(rejected.out).toMatch(/Cannot complete Allocation/)
  })

  it('serves /turns with the TLS port', async () => {
    const got = await getMetadata(client, '', [METADATA_KEYS.turns])
    const parsed = parseTurnMetadata(got[METADATA_KEYS.turns] ?? '')
    expect(parsed).toMatchObject({ ok: true, value: { host: '127.0.0.1', port: 5349 } })
    if (parsed.ok)
      expect(verifyTurnCredential(service.secret, parsed.value.username, parsed.value.password, Date.now()).ok).toBe(
        true,
      )
  })

  it('accepts a SETMETADATA transaction without storing it', async () => {
    await setMetadata(client, 'INBOX', '/private/vendor/deltachat/test', 'abc')
    expect(await logWith(service.logs, /transaction \S+: set \S*vendor\/deltachat\/test ignored/)).toMatch(
      /transaction \S+: set \S*vendor\/deltachat\/test ignored/,
    )
    expect(await logWith(service.logs, /transaction \S+: committed/)).toMatch(/transaction \S+: committed/)
    const got = await getMetadata(client, 'INBOX', ['/private/vendor/deltachat/test'])
    expect(got['/private/vendor/deltachat/test']).toBeNull()
  })

  it('never logs the secret or a password', () => {
    expect(service.logs()).not.toContain(service.secret)
    expect(dovecot.logs()).not.toMatch(/Error/)
  })
})
