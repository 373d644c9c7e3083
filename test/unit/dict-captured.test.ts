/**
 * chatmail-metadata's dict server against what real dovecots sent it: every connection of a
 * captured IMAP session (test/fixtures/dict/README.md) is replayed byte for byte over a unix
 * socket, and the replies must be the captured ones. TURN values are minted with this test's own
 * secret and clock, so they are compared by shape and verified with that secret instead.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseTurnMetadata } from '../../src/protocols/metadata-values.js'
import { verifyTurnCredential } from '../../src/protocols/turn-rest.js'
import { answer } from '../../src/remote/chatmail-metadata/answers.js'
import { parseConfig } from '../../src/remote/chatmail-metadata/config.js'
import { imapServerEntry } from '../../src/remote/chatmail-metadata/keys.js'
import { createDictServer } from '../../src/remote/chatmail-metadata/server.js'

interface Capture {
  meta: { dovecot: string; domain: string; iroh_relay_url: string }
  /** Per connection: what dovecot sent, and what it got back, in order. */
  connections: { sent: string; replies: string }[]
}

function loadCapture(name: string): Capture {
  const [head, ...rest] = readFileSync(new URL(`../fixtures/dict/${name}`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
  const connections: Capture['connections'] = []
  for (const line of rest) {
    const r = JSON.parse(line) as { c: number; dir: '>' | '<'; data: string }
    connections[r.c - 1] ??= { sent: '', replies: '' }
    const c = connections[r.c - 1]!
    if (r.dir === '>') c.sent += r.data
    else c.replies += r.data
  }
  return { meta: JSON.parse(head!), connections }
}

const TURN_REPLY = /^O([^:\n]+):(\d+):(\d+):([A-Za-z0-9+/=]+)$/

/** TURN values → `O<turn host:port>`, checked against the secret when one is given. */
function maskTurn(replies: string, secret?: string): string {
  return replies
    .split('\n')
    .map((line) => {
      const m = TURN_REPLY.exec(line)
      if (!m) return line
      if (secret !== undefined) {
        const turn = parseTurnMetadata(line.slice(1))
        if (!turn.ok) throw new Error(`${line}: ${turn.reason}`)
        expect(verifyTurnCredential(secret, turn.value.username, turn.value.password, Date.now())).toMatchObject({
          ok: true,
        })
      }
      return `O<turn ${m[1]}:${m[2]}>`
    })
    .join('\n')
}

async function exchange(socket: string, sent: string, expectedLines: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket)
    let got = ''
    const timer = setTimeout(() => {
      c.destroy()
      reject(new Error(`no complete reply; got ${JSON.stringify(got)}`))
    }, 5000)
    c.on('data', (d) => {
      got += d.toString()
      if (got.split('\n').length - 1 >= expectedLines) {
        clearTimeout(timer)
        c.end()
        resolve(got)
      }
    })
    c.on('error', reject)
    c.on('close', () => {
      clearTimeout(timer)
      resolve(got)
    })
    c.write(sent)
  })
}

for (const file of ['dovecot-2.3.19.jsonl', 'dovecot-2.4.1.jsonl']) {
  const capture = loadCapture(file)
  describe(`chatmail-metadata answers dovecot ${capture.meta.dovecot} as captured`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'dict-captured-'))
    const socket = join(dir, 'metadata.socket')
    const secret = randomBytes(16).toString('hex')
    const warnings: string[] = []
    let server: Server

    beforeAll(async () => {
      const parsed = parseConfig(
        `socket = ${socket}\ndomain = ${capture.meta.domain}\niroh_relay_url = ${capture.meta.iroh_relay_url}\nsecret_file = /nonexistent\n`,
      )
      if (!parsed.ok) throw new Error(parsed.errors.join('; '))
      const config = parsed.config
      server = createDictServer({
        lookup: (key) => {
          const entry = imapServerEntry(key)
          return entry === undefined ? undefined : answer(entry, config, secret, Date.now())
        },
        log: (level, message) => {
          if (level !== 'debug') warnings.push(`${level}: ${message}`)
        },
        verbose: () => false,
      })
      await new Promise<void>((resolve) => server.listen(socket, resolve))
    })
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve))
      rmSync(dir, { recursive: true, force: true })
    })

    it('has lookups, transactions and iterations to replay', () => {
      const sent = capture.connections.map((c) => c.sent).join('')
      for (const cmd of ['H', 'L', 'I', 'B', 'S', 'U', 'C']) expect(sent).toMatch(new RegExp(`^${cmd}`, 'm'))
    })

    capture.connections.forEach((conn, i) => {
      const firstLines = conn.sent.split('\n').slice(0, 3).join(' | ')
      it(`connection ${i + 1}: ${firstLines.slice(0, 90)}`, async () => {
        const expected = conn.replies.split('\n').length - 1
        const got = await exchange(socket, conn.sent, expected)
        expect(maskTurn(got, secret)).toBe(maskTurn(conn.replies))
        expect(warnings).toEqual([])
      })
    })
  })
}
