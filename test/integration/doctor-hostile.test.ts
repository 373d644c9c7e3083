/**
 * The doctor against hostile IMAP servers on loopback (issue 9, items 11-13): what it reads is
 * capped and a cap fails the check saying so; server text cannot steer the terminal; the
 * password's ways in and out are said aloud.
 */
import { once } from 'node:events'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { imapChecks } from '../../src/doctor/checks/imap.js'
import { metadataChecks } from '../../src/doctor/checks/metadata.js'
import { runDoctor } from '../../src/doctor/index.js'
import type { CheckResult, DoctorOptions, DoctorReport } from '../../src/doctor/model.js'
import { encodeFrame, FrameType } from '../../src/protocols/iroh-relay.js'
import { RelayError, relayHandshake, relayPing } from '../../src/relay/client.js'
import { runCli } from '../helpers/cli.js'
import { type HostileImap, type HostileMode, startHostileImap } from '../helpers/hostile-imap.js'

const CHECKS = [...imapChecks, ...metadataChecks]
/** Far above what the doctor may read, far below what an unbounded reader takes in a few seconds. */
const READ_BOUND = 8 * 1024 * 1024

const servers: HostileImap[] = []
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

async function hostile(mode: HostileMode, o: { plain?: boolean } = {}): Promise<HostileImap> {
  const s = await startHostileImap(mode, o)
  servers.push(s)
  return s
}

function options(s: HostileImap, extra: Partial<DoctorOptions> = {}): DoctorOptions {
  return {
    domain: 'localhost',
    imapHost: s.host,
    imapPort: s.port,
    user: 'alice@localhost',
    password: 'not-a-real-password',
    ca: s.certPem,
    insecure: false,
    timeoutMs: 5000,
    ...extra,
  }
}

const check = (r: DoctorReport, id: string) => r.checks.find((c) => c.id === id) as CheckResult

describe('item 11: what the doctor reads from a server is capped', () => {
  it('an endless greeting on a STARTTLS port: imap.tls and imap.login fail on the cap, having read little', async () => {
    const s = await hostile({ kind: 'endless-greeting' }, { plain: true })
    const report = await runDoctor(options(s, { imapStarttls: true }), { checks: CHECKS })
    const tls = check(report, 'imap.tls')
    expect(tls).toMatchObject({ status: 'fail', detail: expect.stringContaining('more than 8 KiB') })
    expect(tls.hint).toMatch(/not how dovecot answers/)
    const login = check(report, 'imap.login')
    expect(login).toMatchObject({ status: 'fail', detail: expect.stringMatching(/more than any chatmail server/) })
    expect(s.bytesSent()).toBeLessThan(READ_BOUND)
  })

  it('greeting lines that never end the greeting: imap.tls stops after 64 KiB', async () => {
    const s = await hostile({ kind: 'endless-lines' }, { plain: true })
    const report = await runDoctor(options(s, { imapStarttls: true }), { checks: CHECKS, only: ['imap.tls'] })
    expect(check(report, 'imap.tls')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('more than 64 KiB'),
    })
    expect(s.bytesSent()).toBeLessThan(READ_BOUND)
  })

  it('an endless greeting over implicit TLS: imap.login fails on the cap', async () => {
    const s = await hostile({ kind: 'endless-greeting' })
    const report = await runDoctor(options(s), { checks: CHECKS, only: ['imap.login'] })
    expect(check(report, 'imap.login')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/Line length \d+ exceeds.*the doctor stopped reading/),
    })
    expect(s.bytesSent()).toBeLessThan(READ_BOUND)
  })

  it('a 1 GiB literal in the GETMETADATA answer: the discovery checks fail on the cap', async () => {
    const s = await hostile({ kind: 'huge-literal', size: 1024 * 1024 * 1024 })
    const report = await runDoctor(options(s), { checks: CHECKS })
    expect(check(report, 'imap.login').status).toBe('ok')
    const relay = check(report, 'metadata.irohrelay')
    expect(relay).toMatchObject({ status: 'fail', detail: expect.stringMatching(/Literal size \d+ exceeds/) })
    expect(relay.detail).toContain('the doctor stopped reading')
    expect(s.bytesSent()).toBeLessThan(READ_BOUND)
  })

  it('the CLI ends within --timeout against a server that floods it', async () => {
    const s = await hostile({ kind: 'endless-greeting' })
    const dir = await mkdtemp(join(tmpdir(), 'chatmail-hostile-'))
    try {
      const r = await runCli(
        ['doctor', 'localhost', '--imap-host', s.host, '--imap-port', String(s.port), '--insecure', '--json'],
        { cwd: dir, env: { CHATMAIL_USER: 'a@localhost', CHATMAIL_PASSWORD: 'x' } },
      )
      expect(r.code).toBe(1)
      const login = JSON.parse(r.stdout).checks.find((c: { id: string }) => c.id === 'imap.login')
      expect(login).toMatchObject({ status: 'fail' })
      expect(s.bytesSent()).toBeLessThan(READ_BOUND)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

/** A relay that answers every upgrade with 101 and then floods frames (derp framing) or an endless HTTP head. */
async function floodingRelay(kind: 'frames' | 'head'): Promise<{ url: string; sent: () => number; stop(): void }> {
  let sent = 0
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.once('data', () => {
      const head =
        kind === 'frames'
          ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: iroh derp http\r\n\r\n'
          : 'HTTP/1.1 200 OK\r\n'
      socket.write(head)
      const frame =
        kind === 'frames'
          ? encodeFrame(FrameType.KeepAlive, Buffer.alloc(60 * 1024))
          : Buffer.from('X-Flood: aaaaaaaa\r\n'.repeat(3000))
      const pump = () => {
        while (!socket.destroyed) {
          sent += frame.length
          if (!socket.write(frame)) return void socket.once('drain', pump)
        }
      }
      pump()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, sent: () => sent, stop: () => server.close() }
}

describe('item 11: what the doctor reads from a relay is capped', () => {
  it('a relay that floods frames after the upgrade: the handshake fails on the cap, not by timeout', async () => {
    const relay = await floodingRelay('frames')
    try {
      const err = await relayHandshake(relay.url, { timeoutMs: 5000 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RelayError)
      expect((err as RelayError).message).toMatch(/the relay connection: the server sent more than 2 MiB/)
      expect(relay.sent()).toBeLessThan(READ_BOUND)
    } finally {
      relay.stop()
    }
  })

  it('an endless HTTP head: /ping fails on the cap', async () => {
    const relay = await floodingRelay('head')
    try {
      const err = await relayPing(relay.url, { timeoutMs: 5000 }).catch((e: unknown) => e)
      expect((err as RelayError).message).toMatch(/response head larger than 32768 bytes/)
      expect(relay.sent()).toBeLessThan(READ_BOUND)
    } finally {
      relay.stop()
    }
  })
})

const ESCAPES = '\u001b]0;owned\u0007\u001b[2J\u001b[H\rok  everything  all checks passed\u202e'

describe('item 12: server text cannot steer the terminal', () => {
  let s: HostileImap
  let dir: string
  beforeAll(async () => {
    s = await hostile({ kind: 'login-refused', text: ESCAPES })
    dir = await mkdtemp(join(tmpdir(), 'chatmail-hostile-'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  const args = () => ['doctor', 'localhost', '--imap-host', s.host, '--imap-port', String(s.port), '--insecure']
  const env = { CHATMAIL_USER: 'a@localhost', CHATMAIL_PASSWORD: 'x' }

  it('the plain report and the progress lines show escape sequences as text, never as bytes', async () => {
    const r = await runCli([...args(), '--only', 'imap.login'], { cwd: dir, env })
    expect(r.code).toBe(1)
    for (const out of [r.stdout, r.stderr]) {
      expect(out).toContain('refused the login')
      expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/)
      expect(out).toContain('\\x1b]0;owned\\x07\\x1b[2J')
    }
    expect(r.stdout.split('\n').filter((l) => /all checks passed/.test(l))).toHaveLength(1)
  })

  it('--json keeps the exact text (JSON escapes it)', async () => {
    const r = await runCli([...args(), '--only', 'imap.login', '--json'], { cwd: dir, env })
    expect(r.stdout).not.toContain('\u001b')
    const login = JSON.parse(r.stdout).checks[0]
    expect(login.detail).toContain(ESCAPES.trim())
  })
})

describe('item 13: the password', () => {
  let s: HostileImap
  let dir: string
  beforeAll(async () => {
    s = await hostile({ kind: 'metadata', values: {} })
    dir = await mkdtemp(join(tmpdir(), 'chatmail-hostile-'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  const base = () => [
    'doctor',
    'localhost',
    '--imap-host',
    s.host,
    '--imap-port',
    String(s.port),
    '--only',
    'imap.login',
  ]

  it('--password on the command line works, with a warning naming the safer ways', async () => {
    const r = await runCli([...base(), '--insecure', '-u', 'a@localhost', '--password', 'pw-on-argv'], { cwd: dir })
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/warning: --password shows the password .*CHATMAIL_PASSWORD or --password-file/)
    expect(r.stderr).not.toContain('pw-on-argv')
  })

  it('CHATMAIL_PASSWORD and --password-file give no such warning; both --password and the file is a usage error', async () => {
    const env = await runCli([...base(), '--insecure', '-u', 'a@localhost'], {
      cwd: dir,
      env: { CHATMAIL_PASSWORD: 'pw' },
    })
    expect(env.code).toBe(0)
    expect(env.stderr).not.toMatch(/--password shows/)
    const file = join(dir, 'password')
    await writeFile(file, 'pw-in-file\n')
    await chmod(file, 0o600)
    const fromFile = await runCli([...base(), '--insecure', '-u', 'a@localhost', '--password-file', file], { cwd: dir })
    expect(fromFile.code).toBe(0)
    expect(fromFile.stderr).not.toMatch(/--password shows/)
    const both = await runCli([...base(), '-u', 'a@localhost', '--password', 'x', '--password-file', file], {
      cwd: dir,
    })
    expect(both.code).toBe(2)
  })

  it('--insecure says that the password goes over TLS that did not verify', async () => {
    const r = await runCli([...base(), '--insecure', '-u', 'a@localhost', '--json'], {
      cwd: dir,
      env: { CHATMAIL_PASSWORD: 'pw' },
    })
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(
      /warning: --insecure: the IMAP password is sent even when the server certificate does not verify/,
    )
    const login = JSON.parse(r.stdout).checks[0]
    expect(login).toMatchObject({ id: 'imap.login', status: 'ok' })
    expect(login.detail).toMatch(/password was sent over TLS whose certificate did not verify/)
  })

  it('with a trusted certificate the login says nothing of the kind', async () => {
    const report = await runDoctor(options(s), { checks: CHECKS, only: ['imap.login'] })
    expect(check(report, 'imap.login').status).toBe('ok')
    expect(check(report, 'imap.login').detail).not.toMatch(/did not verify/)
  })
})
