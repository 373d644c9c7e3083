/**
 * Issue 15 against the real sshd of a test host (scripts/testhost.sh): how `deploy host` finds
 * its key and its host as ssh would. A temporary HOME stands in for the operator's, with no
 * ssh-agent unless a test starts Debian's own. A second sshd on the guest (port 2200, its own
 * host key) is the target behind a jump host (the guest's sshd on 22).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { resolveTarget, SshSession } from '../../src/ssh/index.js'
import { BIN, runCli } from '../helpers/cli.js'
import { type StandInMirror, serveStandInMirror } from '../helpers/standin-tarball.js'
import { guestShell, startTestHost, stopTestHost, type TestHost, testHostSkipReason } from '../helpers/testhost.js'

const OPTS = { name: 'th-ssh-a', index: 70 }
const skip = testHostSkipReason()
const PASSPHRASE = 'correct horse battery staple'

describe.skipIf(skip)(`SSH as operators use it, against a real sshd${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let host: TestHost
  let dir: string
  let mirror: StandInMirror | undefined
  let innerKey: string
  let encKey: string
  let agent: ChildProcess | undefined
  const savedEnv = { HOME: process.env.HOME, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK }

  /** A fresh operator HOME with ~/.ssh (and optionally files in it). */
  const freshHome = (files: Record<string, string> = {}) => {
    const home = mkdtempSync(join(dir, 'home-'))
    mkdirSync(join(home, '.ssh'), { mode: 0o700 })
    for (const [name, from] of Object.entries(files)) copyFileSync(from, join(home, '.ssh', name))
    return home
  }
  const keygen = (file: string, pass = '') =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', pass, '-f', file])
  const dryRun = (dest: string, home: string, ...extra: string[]) =>
    runCli(
      [
        'deploy',
        'host',
        dest,
        '-c',
        'chatmail.toml',
        '--dry-run',
        '--iroh-relay-source',
        mirror!.source,
        '--iroh-relay-sha256',
        mirror!.sha256,
        ...extra,
      ],
      { cwd: dir, env: { HOME: home, SSH_AUTH_SOCK: '' }, timeoutMs: 300_000 },
    )

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chatmail-ssh-e2e-'))
    host = await startTestHost(OPTS)
    mirror = await serveStandInMirror(dir, host.runnerIp)
    const init = await runCli(['init', host.host], { cwd: dir })
    expect(init.code, init.stderr).toBe(0)
    // The second sshd: all addresses, port 2200, a host key of its own.
    await guestShell(
      host,
      'ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/inner_host_key && /usr/sbin/sshd -p 2200 -h /etc/ssh/inner_host_key -o PidFile=/run/sshd-inner.pid',
    )
    innerKey = (await guestShell(host, 'cut -d" " -f1,2 /etc/ssh/inner_host_key.pub')).trim()
    // An encrypted key, authorised on the guest.
    encKey = join(dir, 'enc_key')
    keygen(encKey, PASSPHRASE)
    await guestShell(host, `echo '${readFileSync(`${encKey}.pub`, 'utf8').trim()}' >> /root/.ssh/authorized_keys`)
  }, 400_000)

  afterAll(async () => {
    process.env.HOME = savedEnv.HOME
    if (savedEnv.SSH_AUTH_SOCK) process.env.SSH_AUTH_SOCK = savedEnv.SSH_AUTH_SOCK
    agent?.kill()
    mirror?.close()
    await stopTestHost(OPTS).catch(() => {})
  }, 120_000)

  test('a default-named key (~/.ssh/id_ed25519), no -i, no agent: the deploy plans; without it, one line and a hint', async () => {
    const home = freshHome({ id_ed25519: host.keyFile, known_hosts: host.knownHostsFile })
    const r = await dryRun(`root@${host.host}`, home)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/dry run: nothing was changed/)
    const bare = freshHome({ known_hosts: host.knownHostsFile })
    const none = await dryRun(`root@${host.host}`, bare)
    expect(none.code).toBe(3)
    expect(none.stderr).toMatch(/^chatmail: no SSH key to log in to .* with: no -i, no ssh-agent running/m)
    expect(none.stderr).toMatch(/\nhint: pass -i FILE, or add your key to ssh-agent/)
  }, 400_000)

  test('chatmail deploy host ALIAS with -F: HostName, User, Port, IdentityFile, UserKnownHostsFile', async () => {
    const home = freshHome()
    mkdirSync(join(home, 'keys'))
    copyFileSync(host.keyFile, join(home, 'keys', 'server_key'))
    writeFileSync(join(home, 'keys', 'known'), `[${host.host}]:2200 ${innerKey}\n`)
    const cfg = join(home, 'cfg')
    writeFileSync(
      cfg,
      [
        'Host myserver',
        `  HostName ${host.host}`,
        '  User root',
        '  Port 2200',
        '  IdentityFile ~/keys/server_key',
        '  IdentitiesOnly yes',
        '  UserKnownHostsFile ~/keys/known',
        'Host *',
        '  User nobody',
        '',
      ].join('\n'),
    )
    const r = await dryRun('myserver', home, '-F', cfg)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`connecting to myserver (root@${host.host}:2200)`)
    expect(r.stdout).toMatch(/dry run: nothing was changed/)
    // The same alias without its known_hosts entry for port 2200: refused, naming that file.
    writeFileSync(join(home, 'keys', 'known'), '')
    const unknown = await dryRun('myserver', home, '-F', cfg)
    expect(unknown.code).toBe(3)
    expect(unknown.stderr).toMatch(/host key of root@\[.*\]:2200 is not in ~\/keys\/known/)
  }, 400_000)

  test('a passphrase key through Debian ssh-agent; without agent or terminal: one line and what to do', async () => {
    const home = freshHome({ known_hosts: host.knownHostsFile })
    const sock = join(dir, 'agent.sock')
    agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' })
    for (let i = 0; i < 50; i++) {
      try {
        execFileSync('ssh-add', ['-l'], { env: { SSH_AUTH_SOCK: sock }, stdio: 'ignore' })
      } catch (e) {
        if ((e as { status?: number }).status === 1) break // agent up, no identities
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    const askpass = join(dir, 'askpass.sh')
    writeFileSync(askpass, `#!/bin/sh\necho '${PASSPHRASE}'\n`, { mode: 0o700 })
    execFileSync('ssh-add', [encKey], {
      env: { SSH_AUTH_SOCK: sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
      stdio: 'ignore',
    })
    process.env.HOME = home
    process.env.SSH_AUTH_SOCK = sock
    const target = await resolveTarget(`root@${host.host}`, { sshConfig: 'none', identity: encKey })
    const s = await SshSession.connectTo(target)
    expect((await s.exec('id -un')).stdout.trim()).toBe('root')
    s.close()
    // No agent, no terminal: the encrypted key cannot be used, and the user is told why.
    const r = await dryRun(`root@${host.host}`, home, '-i', encKey)
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      /^chatmail: cannot log in to root@.*: the SSH key .*enc_key is encrypted and its passphrase was not given \(no terminal to ask on\)\nhint: add it to ssh-agent first \(ssh-add /m,
    )
  }, 400_000)

  test('a passphrase key typed at the prompt on a pseudo-terminal, never echoed', async () => {
    const home = freshHome({ known_hosts: host.knownHostsFile })
    const cmd = [
      process.execPath,
      BIN,
      'deploy',
      'host',
      `root@${host.host}`,
      '-c',
      'chatmail.toml',
      '--dry-run',
      '-i',
      encKey,
      '--iroh-relay-source',
      mirror!.source,
      '--iroh-relay-sha256',
      mirror!.sha256,
    ]
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ')
    // util-linux script(1) gives the CLI a pseudo-terminal; the passphrase is typed when asked.
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
      cwd: dir,
      env: { ...process.env, HOME: home, SSH_AUTH_SOCK: '', NO_COLOR: '1', TERM: 'dumb' },
    })
    let out = ''
    let typed = false
    let wrong = false
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString('utf8')
        // First a wrong passphrase (asked again), then the right one.
        if (!wrong && /Enter passphrase for SSH key .*enc_key: $/.test(out)) {
          wrong = true
          child.stdin.write('not-it\r')
        } else if (!typed && /wrong passphrase, try again\. Enter passphrase for SSH key .*enc_key: $/.test(out)) {
          typed = true
          child.stdin.write(`${PASSPHRASE}\r`)
        }
      })
      child.on('close', resolve)
    })
    expect(typed, out).toBe(true)
    expect(code, out).toBe(0)
    expect(out).toMatch(/dry run: nothing was changed/)
    expect(out).not.toContain(PASSPHRASE)
    expect(out).not.toContain('not-it')
  }, 400_000)

  test('a jump host: both host keys checked; a changed jump-host key is refused', async () => {
    const home = freshHome({ id_ed25519: host.keyFile })
    process.env.HOME = home
    delete process.env.SSH_AUTH_SOCK
    const known = join(home, '.ssh', 'known_hosts')
    const goodJump = readFileSync(host.knownHostsFile, 'utf8')
    const cfg = join(home, 'cfg')
    writeFileSync(cfg, `Host inner\n  HostName 127.0.0.1\n  Port 2200\n  ProxyJump root@${host.host}\n`)
    writeFileSync(known, `${goodJump}[127.0.0.1]:2200 ${innerKey}\n`)
    const target = await resolveTarget('inner', { sshConfig: cfg })
    const s = await SshSession.connectTo(target)
    // The inner sshd sees the connection coming from the guest itself: it went through the jump host.
    expect((await s.exec('echo $SSH_CONNECTION')).stdout).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 2200/)
    s.close()
    // The target's key missing: refused even though the jump host is fine.
    writeFileSync(known, goodJump)
    await expect(SshSession.connectTo(await resolveTarget('inner', { sshConfig: cfg }))).rejects.toThrow(
      /host key of root@\[127\.0\.0\.1\]:2200 is not in/,
    )
    // The jump host's keys changed (every line of it now holds another key): refused, whatever the flag.
    const otherKey = join(dir, 'other')
    keygen(otherKey)
    const other = readFileSync(`${otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')
    const forged = goodJump
      .split('\n')
      .map((l) => (l.trim() ? `${l.split(' ')[0]} ${other}` : l))
      .join('\n')
    writeFileSync(known, `${forged}[127.0.0.1]:2200 ${innerKey}\n`)
    const t2 = await resolveTarget('inner', { sshConfig: cfg, acceptNewHostKey: true })
    await expect(SshSession.connectTo(t2)).rejects.toThrow(
      new RegExp(`host key of jump host root@${host.host.replace(/\./g, '\\.')} has CHANGED`),
    )
  }, 400_000)
})
