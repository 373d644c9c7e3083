/**
 * chatmail-metadata (the built file, a child process) over its unix socket: malformed lines,
 * clients that vanish mid-line, 1000 concurrent connections, a missing or unreadable secret,
 * SIGHUP reloads. After each abuse the service must still answer.
 */
import { chmodSync, chownSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseTurnMetadata } from '../../src/protocols/metadata-values.js'
import { verifyTurnCredential } from '../../src/protocols/turn-rest.js'
import { logWith, type MetadataService, startMetadataService } from '../helpers/dovecot.js'

const PREFIX = 'shared/0123456789abcdef0123456789abcdef/vendor/vendor.dovecot/pvt/server'
const TURN = `L${PREFIX}/vendor/deltachat/turn\talice@example.org\n`
const RELAY = `L${PREFIX}/vendor/deltachat/irohrelay\talice@example.org\n`
const HELLO = 'H3\t2\t0\t\tmetadata\n'

/** Sends `data`, collects `lines` reply lines (or everything until the server closes). */
function converse(
  socket: string,
  data: string | Buffer,
  lines = Number.POSITIVE_INFINITY,
): Promise<{ replies: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(socket)
    let buf = ''
    const done = (closed: boolean): void => {
      s.destroy()
      const replies = buf.split('\n')
      replies.pop()
      resolve({ replies, closed })
    }
    s.setTimeout(10_000, () => reject(new Error(`no reply; got ${JSON.stringify(buf)}`)))
    s.on('data', (d) => {
      buf += d.toString()
      if (buf.split('\n').length - 1 >= lines) done(false)
    })
    s.on('end', () => done(true))
    s.on('error', reject)
    s.write(data)
  })
}

async function turnValue(svc: MetadataService): Promise<string> {
  const { replies } = await converse(svc.socket, HELLO + TURN, 1)
  return replies[0] as string
}

describe('chatmail-metadata robustness', () => {
  let svc: MetadataService

  beforeAll(async () => {
    svc = await startMetadataService({ irohRelayUrl: 'https://relay.example.org' })
  })
  afterAll(async () => {
    await svc?.stop()
  })

  it('answers pipelined commands in order on one connection', async () => {
    const { replies } = await converse(
      svc.socket,
      `${HELLO}${TURN}B1\talice\nS1\tpriv/x\tv\nC1\nI0\t0\tshared/\talice\n${RELAY}L${PREFIX}/nope\talice\n`,
      5,
    )
    expect(replies[0]).toMatch(/^Oexample\.org:3478:\d+:[A-Za-z0-9+/]{27}=$/)
    expect(replies.slice(1)).toEqual(['O1', '', 'Ohttps://relay.example.org', 'N'])
  })

  it('closes the connection on an unknown command, and keeps serving others', async () => {
    const bad = await converse(svc.socket, `${HELLO}Zgarbage\n${TURN}`)
    expect(bad).toEqual({ replies: [], closed: true })
    expect(await logWith(svc.logs, /closing a dict connection: unknown command "Z"/)).toMatch(
      /closing a dict connection: unknown command "Z"/,
    )
    expect(await turnValue(svc)).toMatch(/^O/)
  })

  it('ignores empty lines and survives binary garbage', async () => {
    const empty = await converse(svc.socket, `\n\n${HELLO}${RELAY}`, 1)
    expect(empty.replies).toEqual(['Ohttps://relay.example.org'])
    const garbage = await converse(svc.socket, Buffer.from([0, 0xff, 0xfe, 9, 10, 0xc3, 10]))
    expect(garbage.closed).toBe(true)
    expect(svc.alive()).toBe(true)
    expect(await turnValue(svc)).toMatch(/^O/)
  })

  it('closes a connection whose line exceeds 64 KiB', async () => {
    const huge = await converse(svc.socket, `${HELLO}L${'x'.repeat(70_000)}`)
    expect(huge.closed).toBe(true)
    expect(await logWith(svc.logs, /line longer than 65536 bytes/)).toMatch(/line longer than 65536 bytes/)
    expect(await turnValue(svc)).toMatch(/^O/)
  })

  it('survives clients that disconnect mid-line', async () => {
    for (let i = 0; i < 50; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(svc.socket, () => {
          s.write(HELLO + TURN.slice(0, 20 + i))
          s.destroy()
          resolve()
        })
        s.on('error', () => resolve())
      })
    }
    expect(svc.alive()).toBe(true)
    expect(await turnValue(svc)).toMatch(/^O/)
  })

  it('serves 1000 concurrent connections', async () => {
    const results = await Promise.all(Array.from({ length: 1000 }, () => converse(svc.socket, HELLO + TURN, 1)))
    const now = Date.now()
    for (const { replies } of results) {
      const parsed = parseTurnMetadata((replies[0] ?? '').slice(1))
      if (!parsed.ok) throw new Error(`bad reply ${replies[0]}: ${parsed.reason}`)
      expect(verifyTurnCredential(svc.secret, parsed.value.username, parsed.value.password, now).ok).toBe(true)
    }
    expect(svc.alive()).toBe(true)
  })

  it('applies a new config on SIGHUP, and keeps the old one when the new one is broken', async () => {
    svc.writeConfig({ turnPort: 3479, ttl: '2d' })
    expect(await svc.reload()).toMatch(/^reloaded/)
    const value = parseTurnMetadata((await turnValue(svc)).slice(1))
    expect(value).toMatchObject({ ok: true, value: { port: 3479 } })
    if (value.ok) expect(value.value.expires).toBeGreaterThan(Date.now() / 1000 + 2 * 86_400 - 60)
    writeFileSync(svc.configPath, 'domain = \nnonsense\n')
    expect(await svc.reload()).toMatch(/^reload failed/)
    expect(parseTurnMetadata((await turnValue(svc)).slice(1))).toMatchObject({ ok: true, value: { port: 3479 } })
  })

  it('never logs the secret', () => {
    expect(svc.logs()).not.toContain(svc.secret)
  })
})

describe('chatmail-metadata without a readable secret', () => {
  const services: MetadataService[] = []
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()))
  })

  it('logs a missing secret, answers TURN not-found, serves the rest, and recovers on SIGHUP', async () => {
    const svc = await startMetadataService({ secret: null, irohRelayUrl: 'https://relay.example.org' })
    services.push(svc)
    expect(
      await logWith(svc.logs, /TURN secret file \S+turn-secret does not exist: TURN lookups answer not-found/),
    ).toMatch(/TURN secret file \S+turn-secret does not exist: TURN lookups answer not-found/)
    const { replies } = await converse(svc.socket, HELLO + TURN + RELAY, 2)
    expect(replies).toEqual(['N', 'Ohttps://relay.example.org'])
    expect(svc.alive()).toBe(true)
    writeFileSync(svc.secretFile, 'late-secret\n', { mode: 0o600 })
    await svc.reload()
    const value = parseTurnMetadata((await turnValue(svc)).slice(1))
    expect(
      value.ok && verifyTurnCredential('late-secret', value.value.username, value.value.password, Date.now()).ok,
    ).toBe(true)
  })

  it('logs a secret it may not read, and answers TURN not-found', async () => {
    const asRoot = process.getuid?.() === 0
    // As root, run the service as nobody (65534) so a 0600 root-owned file is really unreadable;
    // otherwise a mode-000 file of our own.
    const svc = await startMetadataService(asRoot ? { uid: 65534, gid: 65534 } : {})
    services.push(svc)
    chmodSync(svc.secretFile, 0o000)
    if (asRoot) chownSync(svc.secretFile, 0, 0)
    await svc.reload()
    expect(await logWith(svc.logs, /TURN secret file \S+ is not readable by this user \(permission denied\)/)).toMatch(
      /TURN secret file \S+ is not readable by this user \(permission denied\)/,
    )
    const { replies } = await converse(svc.socket, HELLO + TURN, 1)
    expect(replies).toEqual(['N'])
    expect(svc.alive()).toBe(true)
  })
})
