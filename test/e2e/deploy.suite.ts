/**
 * `chatmail deploy host` from nothing to a working chatmail server, on a real systemd Debian host
 * (scripts/testhost.sh), driven through the built CLI as an operator would. The iroh-relay
 * binary cannot be downloaded here: the test serves a tarball holding the STAND-IN relay
 * (test/helpers/standin-tarball.ts) from a local HTTP server, with its own sha256.
 *
 * Runs on Debian 12 and on Debian 13 (deploy-12.test.ts, deploy-13.test.ts), one host each (CHATMAIL_E2E_DEBIAN=13 or =12 picks
 * one). The checks that do not depend on the release (a squatted port, a foreign OS, host keys)
 * run on the last host only.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { ImapFlow } from 'imapflow'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { sessionPlaces } from '../helpers/dovecot.js'
import { imapsClient } from '../helpers/imap-login.js'
import { type StandInMirror, serveStandInMirror } from '../helpers/standin-tarball.js'
import {
  DEBIAN_SUITES,
  type DebianSuite,
  deployHostArgs,
  e2eSuites,
  guestShell,
  releaseSkipReason,
  startTestHost,
  stopTestHost,
  type TestHost,
} from '../helpers/testhost.js'

const HOSTS = {
  bookworm: { name: 'th-deploy', index: 6, suite: 'bookworm' },
  trixie: { name: 'th-d13-deploy', index: 49, suite: 'trixie' },
} as const satisfies Record<DebianSuite, { name: string; index: number; suite: DebianSuite }>
const SUITES = e2eSuites()
/** What the release's dovecot must show: its version in `doveconf -n`, and the 2.4 grammar or not. */
const DOVECOT = {
  bookworm: { version: /^# 2\.3\./, configVersion: false },
  trixie: { version: /^# 2\.4\./, configVersion: true },
} as const
const BIN = resolve('bin/run.js')

interface Run {
  code: number
  stdout: string
  stderr: string
}

const cli = (args: string[], cwd: string, timeoutMs = 600_000): Promise<Run> => runCli(args, { cwd, timeoutMs })

/** Accounts whose devices keep an IMAP session in IDLE through the tests (made by their first login). */
const IDLERS = ['idlepush1', 'idlepush2', 'idlepush3']
const IDLE_PASSWORD = 'idle-push-password'

/**
 * A node script for the host: one message to each address in argv over dovecot's LMTP socket, as
 * postfix delivers; prints the server's replies.
 */
const LMTP_DELIVERY = `
const rcpts = process.argv.slice(2)
const body = 'From: sender@example.org\\r\\nSubject: push after hibernation\\r\\n\\r\\nwake up\\r\\n.'
const steps = ['LHLO e2e', 'MAIL FROM:<sender@example.org>', ...rcpts.map((r) => 'RCPT TO:<' + r + '>'), 'DATA', body, 'QUIT']
const s = require('net').connect('/var/spool/postfix/private/dovecot-lmtp')
let buf = ''
s.on('data', (d) => {
  buf += d
  // A whole reply: its last line is "NNN text".
  if (!/(^|\\n)\\d{3} [^\\n]*\\r\\n$/.test(buf)) return
  process.stdout.write(buf)
  buf = ''
  const next = steps.shift()
  if (next === undefined) s.end()
  else s.write(next + '\\r\\n')
})
`

export function deploySuite(suite: DebianSuite): void {
  const skip = releaseSkipReason(suite)
  describe.skipIf(skip)(
    `chatmail deploy host on a real Debian host: ${suite}${skip ? ` (skipped: ${skip})` : ''}`,
    () => {
      const OPTS = HOSTS[suite]
      const last = suite === SUITES.at(-1)
      let host: TestHost
      let dir: string
      let mirror: StandInMirror | undefined
      const idlers: { client: ImapFlow; exists: number }[] = []
      const deployArgs = (...extra: string[]) =>
        deployHostArgs(host, `root@${host.host}`, mirror as StandInMirror, ...extra)

      beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), 'chatmail-deploy-'))
        host = await startTestHost(OPTS)
        mirror = await serveStandInMirror(dir, host.runnerIp)
        // An IP-only server: self-signed TLS, everything addressable without DNS.
        const init = await cli(['init', host.host], dir)
        expect(init.code, init.stderr).toBe(0)
      }, 300_000)

      afterAll(async () => {
        for (const i of idlers) await i.client.logout().catch(() => {})
        mirror?.close()
        await stopTestHost(OPTS).catch(() => {})
      }, 120_000)

      test('a deploy killed during the package install re-runs to a working server, doctor green', async () => {
        const child: ChildProcess = spawn(process.execPath, [BIN, ...deployArgs('--yes')], {
          cwd: dir,
          stdio: 'ignore',
          env: { ...process.env, NO_COLOR: '1' },
        })
        // Kill it while apt-get runs on the host: the worst moment.
        let killed = false
        for (let i = 0; i < 240 && !killed && child.exitCode === null; i++) {
          await new Promise((r) => setTimeout(r, 500))
          const ps = await guestShell(host, 'pgrep -x apt-get || true')
          if (ps.trim()) {
            child.kill('SIGKILL')
            killed = true
          }
        }
        expect(killed, 'the deploy reached apt-get and was killed there').toBe(true)

        const r = await cli(deployArgs('--yes', '--json'), dir)
        expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
        const out = JSON.parse(r.stdout)
        expect(out.changed).toBeGreaterThan(0)
        const notOk = out.doctor.checks.filter((c: { status: string }) => c.status !== 'ok')
        expect(notOk, JSON.stringify(notOk, null, 1)).toEqual([])
        expect(out.doctor.status).toBe('ok')
        // The doctor account's password was kept in the local config, still private.
        expect(readFileSync(join(dir, 'chatmail.toml'), 'utf8')).toMatch(/^password = "[\w-]{24}"/m)
        expect(statSync(join(dir, 'chatmail.toml')).mode & 0o777).toBe(0o600)
        // The secret is on the host only in 0400/0640 files.
        const modes = await guestShell(host, 'stat -c "%n %a %U:%G" /etc/chatmail/turn-secret /etc/turnserver.conf')
        expect(modes).toContain('/etc/chatmail/turn-secret 400 chatmail-metadata:root')
        expect(modes).toContain('/etc/turnserver.conf 640 root:turnserver')
        // The release's own dovecot, with the configuration for its version.
        expect(await guestShell(host, '. /etc/os-release && echo $VERSION_ID')).toBe(`${DEBIAN_SUITES[suite]}\n`)
        expect(await guestShell(host, 'doveconf -n | head -n 1')).toMatch(DOVECOT[suite].version)
        const grammar = await guestShell(host, 'grep -c "^dovecot_config_version" /etc/dovecot/dovecot.conf || true')
        expect(grammar.trim()).toBe(DOVECOT[suite].configVersion ? '1' : '0')
      }, 900_000)

      test('many devices: the limits and hibernation are live, without warnings; IDLE sessions open on 993', async () => {
        expect(await guestShell(host, 'doveconf -n 2>&1 >/dev/null')).toBe('')
        const conf = await guestShell(host, 'doveconf -n')
        expect(conf).toMatch(/^imap_hibernate_timeout = 30 ?s(ecs)?$/m)
        // Limits per service, no raised default_client_limit (it would raise every service's limit).
        expect(conf).not.toMatch(/^default_client_limit/m)
        expect(/^service imap \{\n([^}]*)/m.exec(conf)?.[1]).toMatch(/^ {2}process_limit = 1700$/m)
        expect(/^service auth \{\n([^}]*)/m.exec(conf)?.[1]).toMatch(/^ {2}client_limit = 2000$/m)
        // The unit's limits, in the running master and the processes it starts.
        const unit = await guestShell(host, 'systemctl show -p LimitNOFILE,TasksMax,DropInPaths dovecot')
        expect(unit).toContain('LimitNOFILE=65536')
        expect(unit).toContain('TasksMax=16384')
        expect(unit).toContain('/etc/systemd/system/dovecot.service.d/chatmail.conf')
        // The running master and the processes it starts have them; in a container they cannot go
        // past its own hard limit (PID 1's, the runner's), on a server they are the unit's.
        const hard = Number((await guestShell(host, "awk '/open files/ {print $5}' /proc/1/limits")).trim())
        const files = Math.min(65536, hard)
        const limits = await guestShell(
          host,
          'cat /proc/$(systemctl show -p MainPID --value dovecot)/limits /proc/$(pgrep -n imap-login)/limits | grep "open files"',
        )
        expect(limits.trim().split('\n')).toEqual(
          Array(2).fill(expect.stringMatching(new RegExp(`^Max open files +${files} +${files} `))),
        )
        // inotify: the file is there; a container's /proc/sys/fs is read-only (the runner's limits
        // apply), a server's takes the values at once.
        expect(await guestShell(host, 'grep ^fs /etc/sysctl.d/60-chatmail-dovecot.conf')).toBe(
          'fs.inotify.max_user_instances = 65536\nfs.inotify.max_user_watches = 262144\n',
        )
        const inotify = await guestShell(
          host,
          'if [ -w /proc/sys/fs/inotify/max_user_instances ]; then cat /proc/sys/fs/inotify/max_user_instances; else echo read-only; fi',
        )
        expect(['65536\n', 'read-only\n']).toContain(inotify)
        // Devices that stay in IDLE while the next tests run (their first login makes the accounts).
        for (const name of IDLERS) {
          const client = await imapsClient(host.host, `${name}@[${host.host}]`, IDLE_PASSWORD)
          // Not offered: Delta Chat (and imapflow) would compress, and a compressed session cannot hibernate.
          expect([...client.capabilities.keys()].filter((c) => c.startsWith('COMPRESS'))).toEqual([])
          await client.mailboxOpen('INBOX')
          const idler = { client, exists: 0 }
          client.on('exists', (e: { count: number }) => {
            idler.exists = e.count
          })
          void client.idle()
          idlers.push(idler)
        }
      }, 120_000)

      test('a second deploy changes nothing and restarts nothing', async () => {
        const before = await guestShell(
          host,
          'systemctl show -p ActiveEnterTimestampMonotonic dovecot postfix coturn nginx iroh-relay chatmail-metadata',
        )
        const r = await cli(deployArgs('--yes', '--json'), dir)
        expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
        const out = JSON.parse(r.stdout)
        expect(out.changed).toBe(0)
        expect(out.restarted).toEqual([])
        expect(out.roundTrips).toBeLessThanOrEqual(4)
        const after = await guestShell(
          host,
          'systemctl show -p ActiveEnterTimestampMonotonic dovecot postfix coturn nginx iroh-relay chatmail-metadata',
        )
        expect(after).toBe(before)
        const audit = await guestShell(host, 'tail -n 1 /var/log/chatmail-deploy.log')
        expect(audit).toMatch(/result=ok changed=0/)
      }, 300_000)

      test('iroh-relay runs sandboxed as its own user on its port; nginx names no version (issue 9 item 10)', async () => {
        const unit = await guestShell(
          host,
          'systemctl show -p User,CapabilityBoundingSet,RestrictNamespaces,MemoryMax,LimitNOFILE,NoNewPrivileges,ProtectSystem iroh-relay',
        )
        expect(unit).toContain('User=iroh-relay')
        expect(unit).toMatch(/^CapabilityBoundingSet=$/m)
        expect(unit).toContain('RestrictNamespaces=yes')
        expect(unit).toContain(`MemoryMax=${512 * 1024 * 1024}`)
        expect(unit).toContain('LimitNOFILE=65536')
        expect(unit).toContain('NoNewPrivileges=yes')
        expect(unit).toContain('ProtectSystem=strict')
        // It still listens on 3340 as iroh-relay (the doctor's relay checks in the first test went through it).
        const listener = await guestShell(
          host,
          "ss -Hltnp 'sport = :3340' | head -1; ps -o user= -C node,iroh-relay | sort -u",
        )
        expect(listener).toMatch(/:3340\b/)
        expect(listener).toMatch(/^iroh-relay$/m)
        // systemd's own exposure score: as low as chatmail-metadata's, far from unsandboxed (9.x UNSAFE).
        const score = (text: string) => Number(/Overall exposure level for \S+: ([\d.]+)/.exec(text)?.[1] ?? Number.NaN)
        const relay = score(
          await guestShell(host, 'systemd-analyze security --no-pager iroh-relay.service 2>&1 | tail -n 1'),
        )
        const metadata = score(
          await guestShell(host, 'systemd-analyze security --no-pager chatmail-metadata.service 2>&1 | tail -n 1'),
        )
        expect(relay, 'exposure of iroh-relay.service').toBeLessThanOrEqual(3)
        expect(relay).toBeLessThanOrEqual(metadata + 1)
        const head = await guestShell(host, 'curl -skI https://127.0.0.1/ | tr -d "\\r" | grep -i "^server:"')
        expect(head.trim()).toBe('Server: nginx')
      }, 120_000)

      test('accounts are server data: a redeploy keeps them, and takes the doctor out of them', async () => {
        // As a deploy before the doctor had its own file left it, plus an account the server made.
        await guestShell(
          host,
          'cat /etc/dovecot/doctor.passwd >>/etc/dovecot/users && echo "alice@x.example:{PLAIN}secret::::::" >>/etc/dovecot/users',
        )
        const r = await cli(deployArgs('--yes', '--json'), dir)
        expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
        const out = JSON.parse(r.stdout)
        expect(
          out.resources.filter((x: { action: string }) => x.action !== 'unchanged').map((x: { id: string }) => x.id),
        ).toEqual(['command:dovecot-doctor-account-moved'])
        expect(out.doctor.status).toBe('ok')
        // The file's comment (what a line looks like), then the accounts: the doctor's taken out.
        const users = await guestShell(host, 'cat /etc/dovecot/users')
        expect(users).toMatch(/^# /)
        expect(users.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([
          'alice@x.example:{PLAIN}secret::::::',
        ])
        expect(await guestShell(host, 'stat -c "%a %U:%G" /etc/dovecot/users /etc/dovecot/doctor.passwd')).toBe(
          '640 root:dovecot\n640 root:dovecot\n',
        )
      }, 300_000)

      test('--dry-run after a local config change shows exactly that diff and changes nothing', async () => {
        const path = join(dir, 'chatmail.toml')
        const original = readFileSync(path, 'utf8')
        writeFileSync(path, original.replace(/^ttl = "1d"/m, 'ttl = "2d"'))
        try {
          const r = await cli(deployArgs('--dry-run'), dir)
          expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
          expect(r.stdout).toContain('~ file:/etc/chatmail/metadata.conf: content changed')
          expect(r.stdout).toMatch(/^\s+-turn_ttl = 1d$/m)
          expect(r.stdout).toMatch(/^\s+\+turn_ttl = 2d$/m)
          expect(r.stdout).toContain('~ service:chatmail-metadata.service: reload')
          expect(r.stdout).toContain('2 to change')
          const changedLines = r.stdout.split('\n').filter((l) => /^[~+] /.test(l))
          expect(changedLines).toHaveLength(2)
          expect(await guestShell(host, 'grep turn_ttl /etc/chatmail/metadata.conf')).toContain('turn_ttl = 1d')
        } finally {
          writeFileSync(path, original)
        }
      }, 300_000)

      test('a broken value is caught by validation; the old config keeps running', async () => {
        const path = join(dir, 'chatmail.toml')
        const original = readFileSync(path, 'utf8')
        // A certificate path that does not exist: coturn, nginx (and dovecot) refuse it at validation.
        writeFileSync(
          path,
          original.replace(
            /^mode = "self-signed".*$/m,
            'mode = "manual"\ncert = "/etc/missing.pem"\nkey = "/etc/missing.key"',
          ),
        )
        try {
          const r = await cli(deployArgs('--yes'), dir)
          expect(r.code).toBe(1)
          expect(r.stderr).toMatch(/validation of (dovecot|postfix|coturn|nginx)\.service failed/)
          expect(r.stderr).toContain('was not restarted')
          expect(await guestShell(host, 'grep -c /etc/chatmail/tls/fullchain.pem /etc/dovecot/dovecot.conf')).toMatch(
            /^1/,
          )
          expect((await guestShell(host, 'systemctl is-active dovecot nginx postfix')).trim().split('\n')).toEqual([
            'active',
            'active',
            'active',
          ])
        } finally {
          writeFileSync(path, original)
        }
        const again = await cli(deployArgs('--yes', '--json', '--no-doctor'), dir)
        expect(again.code, again.stderr).toBe(0)
        expect(JSON.parse(again.stdout).changed).toBe(0)
      }, 300_000)

      test('many devices: the IDLE sessions are hibernated (no imap process), and a delivery wakes each with EXISTS', async () => {
        const places = async () =>
          sessionPlaces(
            await guestShell(host, 'doveadm -f tab who -1'),
            await guestShell(host, 'doveadm -f tab process status imap imap-hibernate'),
          )
        // 30 s in IDLE (the template's timeout): the tests since the sessions opened took most of it.
        const until = Date.now() + 90_000
        let now = await places()
        while (now.hibernated < IDLERS.length && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 1000))
          now = await places()
        }
        // A hibernation takes a second inotify instance of vmail for a moment: the runner's limit (128
        // per uid, shared by every container) is the usual reason when it does not happen here.
        const why = () =>
          guestShell(host, 'journalctl -u dovecot --no-pager | grep -i -e inotify -e hibernat | tail -n 5')
        expect(now, await why()).toMatchObject({ hibernated: IDLERS.length, inImap: 0 })
        expect(idlers.map((i) => i.exists)).toEqual([0, 0, 0])
        const rcpts = IDLERS.map((n) => `${n}@[${host.host}]`)
        const script = Buffer.from(LMTP_DELIVERY).toString('base64')
        const replies = await guestShell(
          host,
          `echo ${script} | base64 -d >/tmp/lmtp.js && node /tmp/lmtp.js ${rcpts.join(' ')}`,
        )
        expect(replies.match(/^250 2\.0\.0 <[^>]+> \S+ Saved\r?$/gm), replies).toHaveLength(IDLERS.length)
        for (let t = 0; t < 100 && idlers.some((i) => i.exists < 1); t++) await new Promise((r) => setTimeout(r, 200))
        expect(idlers.map((i) => i.exists)).toEqual([1, 1, 1])
        const msg = await (idlers[0] as { client: ImapFlow }).client.fetchOne('*', { envelope: true })
        expect(msg ? msg.envelope?.subject : undefined).toBe('push after hibernation')
      }, 240_000)

      test.runIf(last)(
        'a foreign process on port 443 stops the deploy before any change',
        async () => {
          await guestShell(
            host,
            'systemctl stop nginx && systemd-run --unit=squatter /usr/bin/node -e "require(\'net\').createServer().listen(443)" && sleep 1',
          )
          try {
            const r = await cli(deployArgs('--yes'), dir)
            expect(r.code).toBe(1)
            expect(r.stderr).toMatch(/port 443\/tcp is held by node/)
            expect((await guestShell(host, 'systemctl is-active nginx || true')).trim()).not.toBe('active')
          } finally {
            await guestShell(host, 'systemctl stop squatter; systemctl start nginx')
          }
        },
        300_000,
      )

      test.runIf(last)(
        'a host that is not Debian is refused',
        async () => {
          await guestShell(
            host,
            'printf "ID=ubuntu\\nVERSION_ID=\\"24.04\\"\\n" >/run/os-release.fake && mount --bind /run/os-release.fake /etc/os-release',
          )
          try {
            const r = await cli(deployArgs('--yes'), dir)
            expect(r.code).toBe(1)
            expect(r.stderr).toMatch(
              /the host runs Ubuntu 24\.04; chatmail deploys to Debian 12 \(bookworm\) or Debian 13 \(trixie\) only/,
            )
          } finally {
            await guestShell(host, 'umount /etc/os-release')
          }
        },
        300_000,
      )

      test.runIf(last)(
        'a changed host key and an unreachable host are refused with one clear line',
        async () => {
          const kh = join(dir, 'wrong_known_hosts')
          writeFileSync(
            kh,
            `${host.host} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`,
          )
          const args = deployArgs('--yes')
          args[args.indexOf('--known-hosts') + 1] = kh
          const r = await cli(args, dir)
          expect(r.code).toBe(3)
          const errorLine = r.stderr
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('chatmail: '))
            .at(-1)
          expect(errorLine).toMatch(/host key .*changed|does not match/i)
          const unreachable = deployArgs('--yes')
          unreachable[2] = 'root@10.213.250.2'
          const u = await cli(unreachable, dir, 60_000)
          expect(u.code).toBe(3)
          expect(u.stderr).toMatch(/no route|unreachable|timed out|refused/i)
        },
        120_000,
      )
    },
  )
}
