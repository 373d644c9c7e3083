import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'

const _BIN = resolve('bin/run.js')

interface Run {
  code: number
  stdout: string
  stderr: string
}

const run = (args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Run> => runCli(args, opts)

/** One line for the error, and at most one more for its hint (`hint: …`); the pattern sees both. */
function expectOneLineError(r: Run, code: number, pattern: RegExp) {
  expect(r.code).toBe(code)
  const lines = r.stderr.trim().split('\n')
  expect(lines.length).toBeGreaterThanOrEqual(1)
  expect(lines.length).toBeLessThanOrEqual(2)
  expect(lines[0]).toMatch(/^chatmail: /)
  if (lines[1] !== undefined) expect(lines[1]).toMatch(/^hint: \S/)
  expect(lines.join(' ')).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /) // no stack trace
}

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chatmail-cli-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('chatmail init', () => {
  it('writes a 0600 config with a fresh secret and refuses to overwrite', async () => {
    const r = await run(['init', 'chat.example.org'], { cwd: dir })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('wrote chatmail.toml for chat.example.org')
    const st = await stat(join(dir, 'chatmail.toml'))
    expect(st.mode & 0o777).toBe(0o600)
    const text = await readFile(join(dir, 'chatmail.toml'), 'utf8')
    expect(text).toMatch(/^secret = "[A-Za-z0-9_-]{43}"/m)
    expectOneLineError(await run(['init', 'chat.example.org'], { cwd: dir }), 3, /already exists.*--force/)
    const again = await run(['init', 'chat.example.org', '--force'], { cwd: dir })
    expect(again.code).toBe(0)
    expect(await readFile(join(dir, 'chatmail.toml'), 'utf8')).not.toBe(text)
  })
  it('rejects a bad domain with a usage error', async () => {
    expectOneLineError(
      await run(['init', 'localhost', '-c', 'x.toml'], { cwd: dir }),
      2,
      /not a fully qualified domain name/,
    )
    expectOneLineError(await run(['init', '-c', 'x.toml'], { cwd: dir }), 2, /missing DOMAIN/)
  })
  it('imports a cmdeploy ini and names what it ignored', async () => {
    await writeFile(
      join(dir, 'chatmail.ini'),
      '[params]\nmail_domain = relay.example.org\nmax_user_send_per_minute = 42\npassthrough_senders =\n',
    )
    const r = await run(['init', '--from-ini', 'chatmail.ini', '-c', 'ini.toml'], { cwd: dir })
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('imported from chatmail.ini: mail_domain, max_user_send_per_minute')
    expect(r.stderr).toContain('ignored (no meaning here): passthrough_senders')
    const toml = await readFile(join(dir, 'ini.toml'), 'utf8')
    expect(toml).toContain('domain = "relay.example.org"')
    expect(toml).toMatch(/max_user_send_per_minute = 42\b/)
  })
})

describe('chatmail turn-cred', () => {
  it('prints the metadata line Delta Chat parses, verifiable with --verify', async () => {
    const r = await run(['turn-cred', '--ttl', '90s'], { cwd: dir })
    expect(r.code).toBe(0)
    const line = r.stdout.trim()
    expect(line).toMatch(/^chat\.example\.org:3478:\d{10}:[A-Za-z0-9+/]{27}=$/)
    const expiry = Number(line.split(':')[2])
    expect(Math.abs(expiry - (Math.floor(Date.now() / 1000) + 90))).toBeLessThanOrEqual(5)
    const ok = await run(['turn-cred', '--verify', line], { cwd: dir })
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^valid: expires/)
    const [, , user, pass] = line.split(':') as [string, string, string, string]
    const bad = `${pass[0] === 'A' ? 'B' : 'A'}${pass.slice(1)}`
    const r2 = await run(['turn-cred', '--verify', user, bad], { cwd: dir })
    expectOneLineError(r2, 1, /invalid \(bad signature\)/)
    const r3 = await run(['turn-cred', '--verify', '1000000000', pass], { cwd: dir })
    expect(r3.code).toBe(1)
  })
  it('renders json, ice and uclient', async () => {
    const j = JSON.parse((await run(['turn-cred', '--json'], { cwd: dir })).stdout)
    expect(j).toMatchObject({ host: 'chat.example.org', port: 3478, tlsPort: 5349, ttl: 86400 })
    const ice = JSON.parse(
      (await run(['turn-cred', '--format', 'ice', '--host', 'turn.example.org'], { cwd: dir })).stdout,
    )
    expect(ice.urls).toEqual([
      'turn:turn.example.org:3478',
      'turn:turn.example.org:3478?transport=tcp',
      'turns:turn.example.org:5349?transport=tcp',
    ])
    expect(ice.username).toMatch(/^\d+$/)
    const u = (await run(['turn-cred', '--format', 'uclient', '--port', '3479'], { cwd: dir })).stdout
    expect(u).toMatch(/^turnutils_uclient -y -n 3 -m 1 -u \d+ -w \S+ -p 3479 chat\.example\.org\n$/)
  })
  it('takes the secret from a file or an env var, never from argv', async () => {
    await writeFile(join(dir, 'secret'), 'file-secret-file-secret\n', { mode: 0o600 })
    const r = await run(
      ['turn-cred', '--secret-file', 'secret', '--host', 'h.example', '--format', 'json', '-c', 'none.toml'],
      { cwd: dir },
    )
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    const v = await run(['turn-cred', '--secret-env', 'S', '--verify', j.username, j.password, '-c', 'none.toml'], {
      cwd: dir,
      env: { S: 'file-secret-file-secret' },
    })
    expect(v.code).toBe(0)
    await chmod(join(dir, 'secret'), 0o644)
    const loose = await run(['turn-cred', '--secret-file', 'secret', '--host', 'h.example', '-c', 'none.toml'], {
      cwd: dir,
    })
    expect(loose.stderr).toContain('chmod 600')
  })
  it.each([
    [['turn-cred', '--ttl', '0'], 2, /--ttl 0 must be longer than zero/],
    [['turn-cred', '--ttl', '-5m'], 2, /--ttl/],
    [['turn-cred', '--ttl', '30d'], 2, /--ttl 30d is longer than 5d.*--allow-long-ttl/],
    [['turn-cred', '--ttl', 'soon'], 2, /is not a duration/],
    [['turn-cred', '--bogus'], 2, /Nonexistent flag: --bogus/],
    [['turn-cred', '--host', '2001:db8::1'], 2, /IPv6/],
    [['turn-cred', '--user', 'bob'], 2, /--user cannot be used with --format line/],
    [['turn-cred', '-c', 'missing.toml'], 3, /no TURN secret: missing.toml does not exist/],
    [['turn-cred', '--secret-env', 'NOPE_UNSET'], 3, /NOPE_UNSET is not set/],
    [['turn-cred', '--secret-file', 'nope'], 3, /secret file nope does not exist/],
  ])('%j fails with one clear line', async (args, code, pattern) => {
    expectOneLineError(await run(args, { cwd: dir }), code, pattern)
  })
  it('reports a broken config by file and key', async () => {
    await writeFile(
      join(dir, 'bad.toml'),
      'domain = "chat.example.org"\n[turn]\nsecret = "0123456789abcdef0123"\nprot = 3478\n',
    )
    expectOneLineError(
      await run(['turn-cred', '-c', 'bad.toml'], { cwd: dir }),
      3,
      /bad.toml: unknown key "turn.prot"; allowed in \[turn\]/,
    )
    await writeFile(join(dir, 'unreadable.toml'), 'domain = [\n')
    expectOneLineError(
      await run(['turn-cred', '-c', 'unreadable.toml'], { cwd: dir }),
      3,
      /unreadable.toml: line \d+, column \d+/,
    )
    await writeFile(join(dir, 'dir.toml'), '')
    await rm(join(dir, 'dir.toml'))
    await (await import('node:fs/promises')).mkdir(join(dir, 'dir.toml'))
    expectOneLineError(await run(['turn-cred', '-c', 'dir.toml'], { cwd: dir }), 3, /is a directory/)
  })
})

describe('help', () => {
  it.each([[['--help']], [['init', '--help']], [['turn-cred', '--help']]])('%j shows examples', async (args) => {
    const r = await run(args, { cwd: dir })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/EXAMPLES|Examples:/)
    expect(r.stdout).toContain('$ chatmail')
  })
})

describe('chatmail deploy host (before any connection)', () => {
  it('says first that there is no config, the error on one line and its hint on the next (issue 15)', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'chatmail-empty-'))
    try {
      const r = await run(['deploy', 'host', 'root@127.0.0.1'], { cwd: empty })
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/^chatmail: config file chatmail.toml does not exist\nhint: .*chatmail init.*\n$/)
      expect(r.stderr).not.toMatch(/terminal/)
    } finally {
      await rm(empty, { recursive: true, force: true })
    }
  })
  it('needs --yes without a terminal, and a config', async () => {
    expectOneLineError(
      await run(['deploy', 'host', 'root@127.0.0.1'], { cwd: dir }),
      2,
      /no terminal to confirm.*--yes/,
    )
    expectOneLineError(
      await run(['deploy', 'host', '--dry-run', '-c', 'missing.toml'], { cwd: dir }),
      3,
      /config file missing.toml does not exist.*chatmail init/,
    )
    expectOneLineError(await run(['deploy', 'host', 'root@', '--dry-run'], { cwd: dir }), 2, /invalid destination/)
  })
  it('refuses a config value that would add a directive to a server config, before connecting (issue 9)', async () => {
    const server = createServer((s) => s.destroy())
    let connections = 0
    server.on('connection', () => connections++)
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
    const port = (server.address() as AddressInfo).port
    try {
      await writeFile(
        join(dir, 'inject.toml'),
        'domain = "chat.example.org"\n[tls]\nmode = "manual"\ncert = "/etc/ssl/c.pem\\nssl = no"\nkey = "/k.pem"\n' +
          '[turn]\nsecret = "0123456789abcdef0123"\n',
      )
      expectOneLineError(
        await run(['deploy', 'host', `root@127.0.0.1:${port}`, '--yes', '-c', 'inject.toml'], { cwd: dir }),
        3,
        /inject\.toml: tls\.cert must not contain control characters; found a newline \(U\+000A\)/,
      )
      expect(connections).toBe(0)
    } finally {
      server.close()
    }
    expectOneLineError(
      await run(['init', 'chat.example.org', '--tls', 'manual', '--cert', '/c.pem\nssl = no', '--key', '/k.pem'], {
        cwd: dir,
      }),
      2,
      /--cert must not contain control characters; found a newline/,
    )
    expectOneLineError(
      await run(['init', 'chat.example.org', '--acme-email', 'a@example.org\nx', '-c', 'x.toml'], { cwd: dir }),
      2,
      /--acme-email must not contain control characters/,
    )
  })
  it('with --json, the same error envelope as the doctor: {"status":"error","error":{message,hint,exitCode}}', async () => {
    const deploy = await run(['deploy', 'host', '--dry-run', '--json', '-c', 'missing.toml'], { cwd: dir })
    const doctor = await run(['doctor', '--json', '-c', 'missing.toml'], { cwd: dir })
    // turn-cred's --json is the shared one too (it used to declare its own, and print errors as text).
    const turnCred = await run(['turn-cred', '--json', '-c', 'missing.toml'], { cwd: dir })
    for (const r of [deploy, doctor, turnCred]) {
      expect(r.code).toBe(3)
      const out = JSON.parse(r.stdout)
      expect(Object.keys(out)).toEqual(['status', 'error'])
      expect(out.status).toBe('error')
      expect(Object.keys(out.error)).toEqual(['message', 'hint', 'exitCode'])
      expect(out.error).toMatchObject({ message: expect.stringContaining('missing.toml'), exitCode: 3 })
    }
  })
  it('doctor: a report file it cannot write is said as a write, not a read (exit 3, one line)', async () => {
    const empty = join(dir, 'no-config-here')
    await mkdir(empty, { recursive: true })
    // --json: no progress lines on stderr, only the error (and the envelope on stdout).
    const base = ['doctor', '127.0.0.1', '--only', 'imap.tls', '--timeout', '2', '--json']
    expectOneLineError(
      await run([...base, '--junit', join(empty, 'no-such-dir', 'doctor.xml')], { cwd: empty }),
      3,
      /^chatmail: cannot write JUnit file \S+no-such-dir\/doctor\.xml: its directory does not exist hint: /,
    )
    expectOneLineError(
      await run([...base, '--prometheus', empty], { cwd: empty }),
      3,
      /^chatmail: cannot write Prometheus file \S+: it is a directory hint: /,
    )
  })
  it('turn-cred --json: a usage error in the envelope (exit 2); --verify answers in JSON, exit 1 when invalid', async () => {
    const usage = await run(['turn-cred', '--json', '--ttl', '0'], { cwd: dir })
    expect(usage.code).toBe(2)
    expect(JSON.parse(usage.stdout)).toMatchObject({ status: 'error', error: { exitCode: 2 } })
    const bad = await run(
      ['turn-cred', '--json', '--verify', '1000000000', 'x', '--secret-env', 'S', '-c', 'none.toml'],
      {
        cwd: dir,
        env: { S: 'a-secret-for-this-test' },
      },
    )
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false })
  })
  it('has help with examples', async () => {
    const r = await run(['deploy', 'host', '--help'], { cwd: dir })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('$ chatmail deploy host root@chat.example.org --dry-run')
  })
})
