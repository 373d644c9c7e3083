/**
 * The start-up the three programs on the host share (src/remote/lib/service.ts), each run as built
 * (dist/remote/*.js) by node: the command line, an unreadable config, a stale socket file left by a
 * killed run, a file in the socket's place that is not a socket, a broken config on SIGHUP, SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRemote, logWith } from '../helpers/dovecot.js'

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'remote')

let dir: string
beforeAll(() => {
  buildRemote()
  dir = mkdtempSync(join(tmpdir(), 'chatmail-startup-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Each program with a minimal valid config whose (first) socket is `socket`. */
const PROGRAMS: { name: string; config: (d: string, socket: string) => string }[] = [
  { name: 'chatmail-filter', config: (_d, socket) => `socket = ${socket}\n` },
  {
    name: 'chatmail-metadata',
    config: (d, socket) => `socket = ${socket}\ndomain = example.org\nsecret_file = ${d}/secret\n`,
  },
  {
    name: 'chatmail-accounts',
    config: (d, socket) =>
      [
        'domain = example.org',
        `data_dir = ${d}`,
        `mail_root = ${d}/mail`,
        `dict_socket = ${socket}`,
        `socketmap_socket = ${d}/socketmap.socket`,
        `http_socket = ${d}/http.socket`,
        `control_socket = ${d}/control.socket`,
        '',
      ].join('\n'),
  },
]

/** A unix socket file nobody listens on, as a killed run leaves it (python's bind does not unlink). */
function staleSocket(path: string): void {
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path])
}

describe.each(PROGRAMS)('$name', ({ name, config }) => {
  const program = () => join(DIST, `${name}.js`)
  const run = (...args: string[]) => spawnSync(process.execPath, [program(), ...args], { encoding: 'utf8' })

  it('no config: usage, exit 2; an unreadable config: one line naming it, exit 1', () => {
    const usage = run()
    expect(usage.status).toBe(2)
    expect(usage.stderr).toMatch(new RegExp(`usage: ${name} \\[--check\\] CONFIG`))
    const missing = join(dir, 'no-such.conf')
    const r = run('--check', missing)
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(`error: config ${missing}: cannot read ${missing}: ENOENT\n`)
  })

  it('control characters from the config reach the log as spaces: one line per event', () => {
    const conf = join(dir, `${name}-control.conf`)
    writeFileSync(conf, 'bo\tg\x1b[2Jus = 1\n')
    const r = run('--check', conf)
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(`error: config ${conf}: line 1: unknown key "bo g [2Jus"\n`)
    expect(r.stderr.replace(/\n/g, '')).not.toMatch(/[\0-\x1f\x7f]/)
  })

  it('a stale socket is replaced; a broken config on SIGHUP keeps the old one; SIGTERM stops', async () => {
    const d = mkdtempSync(join(dir, `${name}-`))
    const socket = join(d, 'service.socket')
    const conf = join(d, 'service.conf')
    writeFileSync(join(d, 'secret'), 'a-test-secret-0123456789abcdef\n', { mode: 0o600 })
    writeFileSync(conf, config(d, socket))
    expect(run('--check', conf).status, run('--check', conf).stderr).toBe(0)
    staleSocket(socket)
    let stderr = ''
    const child: ChildProcess = spawn(process.execPath, [program(), conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString()
    })
    const exited = new Promise<number | null>((r) => child.once('exit', r))
    try {
      await logWith(() => stderr, new RegExp(`listening on ${socket}`), 10_000)
      expect(stderr).toMatch(`removed stale socket ${socket}`)
      expect(statSync(socket).isSocket()).toBe(true)
      expect(statSync(socket).mode & 0o777).toBe(0o660)
      writeFileSync(conf, `${config(d, socket)}bogus = 1\n`)
      child.kill('SIGHUP')
      await logWith(() => stderr, /reload failed/, 5000)
      expect(stderr).toMatch(`error: config ${conf}: line `)
      expect(stderr).toMatch('reload failed: keeping the previous config')
      expect(child.exitCode).toBeNull()
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
    expect(stderr).toMatch(/SIGTERM: stopping/)
  })

  it('a file in the socket’s place that is not a socket is left alone: exit 1', () => {
    const d = mkdtempSync(join(dir, `${name}-`))
    const socket = join(d, 'service.socket')
    const conf = join(d, 'service.conf')
    writeFileSync(join(d, 'secret'), 'a-test-secret-0123456789abcdef\n', { mode: 0o600 })
    writeFileSync(conf, config(d, socket))
    writeFileSync(socket, 'not a socket')
    const r = spawnSync(process.execPath, [program(), conf], { encoding: 'utf8', timeout: 10_000 })
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toMatch(`socket ${socket}: listen EADDRINUSE`)
    expect(readFileSync(socket, 'utf8')).toBe('not a socket')
  })
})
