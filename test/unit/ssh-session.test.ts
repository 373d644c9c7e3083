import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseDestination, SshSession, shellQuote } from '../../src/ssh/index.js'

describe('ssh helpers', () => {
  test('parses destinations', () => {
    expect(parseDestination('root@mail.example.org')).toEqual({
      host: 'mail.example.org',
      port: undefined,
      user: 'root',
    })
    expect(parseDestination('admin@10.0.0.1:2222')).toEqual({ host: '10.0.0.1', port: 2222, user: 'admin' })
    expect(parseDestination('root@[2001:db8::1]:22')).toEqual({ host: '2001:db8::1', port: 22, user: 'root' })
    expect(parseDestination('mail.example.org')).toEqual({ host: 'mail.example.org', port: undefined, user: undefined })
    expect(() => parseDestination('@host')).toThrow(/invalid destination/)
    expect(() => parseDestination('root@host:99999')).toThrow(/invalid port/)
  })

  test('quotes for a POSIX shell', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
    expect(execFileSync('sh', ['-c', `printf %s ${shellQuote("a 'b' $HOME \\n")}`], { encoding: 'utf8' })).toBe(
      "a 'b' $HOME \\n",
    )
  })
})

describe('ssh connection errors (loopback)', () => {
  let key: string
  let silent: Server
  let silentPort: number
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssh-unit-'))
    key = join(dir, 'id')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
    // Accepts TCP but never speaks SSH: the handshake timeout.
    silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    silentPort = (silent.address() as { port: number }).port
  })
  afterAll(() => {
    silent.close()
  })

  test('connection refused', async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as { port: number }).port
    probe.close()
    await expect(
      SshSession.connect({ host: '127.0.0.1', port, keyFile: key, knownHostsFile: '/dev/null' }),
    ).rejects.toMatchObject({
      message: `cannot connect to root@[127.0.0.1]:${port}: connection refused`,
      exitCode: 3,
    })
  })

  test('a server that never answers times out with a clear message', async () => {
    const t0 = Date.now()
    await expect(
      SshSession.connect({
        host: '127.0.0.1',
        port: silentPort,
        keyFile: key,
        knownHostsFile: '/dev/null',
        timeoutMs: 800,
      }),
    ).rejects.toThrow(/no SSH handshake within 1 s|timed out/)
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  test('a missing key file', async () => {
    await expect(
      SshSession.connect({ host: '127.0.0.1', keyFile: '/nonexistent/key', knownHostsFile: '/dev/null' }),
    ).rejects.toThrow(/cannot read SSH key \/nonexistent\/key/)
  })
})
