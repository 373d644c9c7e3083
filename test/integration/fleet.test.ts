/**
 * `chatmail fleet doctor` (issue 30, item 4), the built CLI over an inventory directory on
 * loopback: a healthy dovecot, a server whose IMAP port is closed, and a file that does not load.
 * The others finish, the summary names the broken ones, the exit code is 1. `fleet deploy` runs
 * the same pool with deploy host's task; here as far as an SSH connection that is refused.
 */
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { type Dovecot, startDovecot } from '../helpers/dovecot.js'

let dir: string
let dovecot: Dovecot

async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

const server = (domain: string, port: number) =>
  `domain = "${domain}"\n[turn]\nsecret = "0123456789abcdef0123456789abcdef"\n[imap]\nport = ${port}\n`

async function put(name: string, text: string): Promise<void> {
  await writeFile(join(dir, 'servers', name), text)
  await chmod(join(dir, 'servers', name), 0o600)
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chatmail-fleet-'))
  await mkdir(join(dir, 'servers'))
  dovecot = await startDovecot({ cert: { name: 'localhost', altNames: ['IP:127.0.0.1', 'IP:127.0.0.2'] } })
  await writeFile(join(dir, 'ca.pem'), dovecot.certPem)
  await put('a.toml', server('127.0.0.1', dovecot.imapsPort))
  await put('b.toml', server('127.0.0.2', await closedPort()))
  await put('c.toml', `port = 1\n${server('c.example.org', 993)}`)
}, 60_000)

afterAll(async () => {
  await dovecot?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const args = ['fleet', 'doctor', '--only', 'imap.tls', '--ca', 'ca.pem', '--timeout', '3']

describe('chatmail fleet doctor', () => {
  it('one broken server and one broken file: the others finish, the table names both, exit 1', async () => {
    const r = await runCli([...args, '--concurrency', '2'], { cwd: dir })
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^server\s+result\s+time\s+summary$/)
    expect(lines[1]).toMatch(/^127\.0\.0\.1\s+ok\s+[\d.]+ s\s+1 ok, 0 warn, 0 fail$/)
    expect(lines[2]).toMatch(/^127\.0\.0\.2\s+fail\s+[\d.]+ s\s+0 ok, 0 warn, 1 fail: imap\.tls$/)
    expect(lines[3]).toMatch(/^c\.toml\s+error\s+[\d.]+ s\s+.*c\.toml: unknown key "port"/)
    expect(lines[4]).toBe('2 of 3 server(s) failed: 127.0.0.2, c.toml')
    expect(r.stderr).toMatch(/^127\.0\.0\.1: ok/m)
  })

  it('--json: one entry per server with its doctor report', async () => {
    const r = await runCli([...args, '--json'], { cwd: dir })
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout) as {
      status: string
      servers: Array<{ name: string; status: string; result?: { checks: Array<{ id: string; status: string }> } }>
    }
    expect(out.status).toBe('fail')
    expect(out.servers.map((s) => [s.name, s.status])).toEqual([
      ['127.0.0.1', 'ok'],
      ['127.0.0.2', 'fail'],
      ['c.toml', 'error'],
    ])
    expect(out.servers[0]?.result?.checks).toEqual([expect.objectContaining({ id: 'imap.tls', status: 'ok' })])
    expect(r.stderr).toBe('')
  })

  it("fleet deploy asks nothing: without --yes or --dry-run exit 2; an SSH refusal is that server's row", async () => {
    const noYes = await runCli(['fleet', 'deploy'], { cwd: dir })
    expect(noYes.code).toBe(2)
    expect(noYes.stderr).toMatch(/--yes/)
    await mkdir(join(dir, 'deploy'))
    const port = await closedPort()
    for (const n of ['x', 'y']) {
      const text = `${server(`10.0.0.${n === 'x' ? 1 : 2}`, 993)}[deploy]\ndestination = "root@127.0.0.1:${port}"\n`
      await writeFile(join(dir, 'deploy', `${n}.toml`), text, { mode: 0o600 })
    }
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')])
    const r = await runCli(
      ['fleet', 'deploy', '--dry-run', '--inventory', 'deploy', '-i', 'key', '--known-hosts', 'none'],
      { cwd: dir },
    )
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[1]).toMatch(/^10\.0\.0\.1\s+error\s+.*refused/i)
    expect(lines[2]).toMatch(/^10\.0\.0\.2\s+error\s+.*refused/i)
    expect(lines[3]).toBe('2 of 2 server(s) failed: 10.0.0.1, 10.0.0.2')
  })

  it('all well: exit 0; no inventory: exit 3 with one line', async () => {
    await rm(join(dir, 'servers', 'b.toml'))
    await rm(join(dir, 'servers', 'c.toml'))
    const r = await runCli(args, { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/all 1 server\(s\) ok\n$/)
    const none = await runCli([...args, '--inventory', 'nowhere'], { cwd: dir })
    expect(none.code).toBe(3)
    expect(none.stderr).toMatch(/inventory directory nowhere/)
    expect(none.stderr).not.toMatch(/\n\s+at /)
  })
})
