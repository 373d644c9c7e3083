/**
 * The deploy engine against a real systemd Debian host (scripts/testhost.sh), over SSH:
 * host-key checks, facts, plan, apply, idempotency, validation rollback, the host lock, the audit log.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deploy } from '../../src/deploy/engine.js'
import { factsScript, parseFacts } from '../../src/deploy/facts.js'
import { HostLock } from '../../src/deploy/lock.js'
import { binary, type DeploySpec, directory, file, pkg, service, templateFile } from '../../src/deploy/resources.js'
import { SshSession } from '../../src/ssh/index.js'
import { guestShell, startTestHost, stopTestHost, type TestHost, testHostSkipReason } from '../helpers/testhost.js'

const OPTS = { name: 'th-engine', index: 5 }
const skip = testHostSkipReason()
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

describe.skipIf(skip)(`deploy engine on a real host${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let host: TestHost
  let session: SshSession
  let tmp: string
  let server: Server
  let serverPort: number
  const connect = (extra: Partial<Parameters<typeof SshSession.connect>[0]> = {}) =>
    SshSession.connect({
      host: host.host,
      port: host.port,
      user: host.user,
      keyFile: host.keyFile,
      knownHostsFile: host.knownHostsFile,
      timeoutMs: 5000,
      ...extra,
    })

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'chatmail-engine-'))
    host = await startTestHost(OPTS)
    session = await connect()
    // A local HTTP server on the runner's side of the veth: the "download" source of a binary.
    const tarDir = join(tmp, 'tar')
    execFileSync('mkdir', ['-p', join(tarDir, 'relay-v1')])
    writeFileSync(join(tarDir, 'relay-v1', 'relay'), '#!/bin/sh\necho relay v1\n', { mode: 0o755 })
    execFileSync('tar', ['-czf', join(tmp, 'relay.tar.gz'), '-C', tarDir, 'relay-v1'])
    const tarball = readFileSync(join(tmp, 'relay.tar.gz'))
    server = createServer((req, res) => {
      if (req.url === '/relay.tar.gz') res.end(tarball)
      else res.writeHead(404).end()
    })
    serverPort = 8000 + Math.floor(Math.random() * 900)
    await new Promise<void>((resolve) => server.listen(serverPort, host.runnerIp, resolve))
  }, 300_000)

  afterAll(async () => {
    session?.close()
    server?.close()
    await stopTestHost(OPTS)
  }, 60_000)

  describe('ssh', () => {
    test('runs commands as root and counts round trips', async () => {
      const before = session.roundTrips
      const r = await session.exec('id -u; cat', { stdin: 'hello' })
      expect(r).toEqual({ code: 0, stdout: '0\nhello', stderr: '' })
      expect(session.roundTrips - before).toBe(1)
    })

    test('refuses a changed host key, naming the file and line', async () => {
      const kh = join(tmp, 'changed_known_hosts')
      const realKey = readFileSync(host.knownHostsFile, 'utf8')
        .split('\n')
        .find((l) => l.includes('ssh-ed25519'))!
      const blob = Buffer.from(realKey.split(' ')[2]!, 'base64')
      blob[blob.length - 1] = blob[blob.length - 1]! ^ 0xff
      writeFileSync(kh, `# other\n${host.host} ssh-ed25519 ${blob.toString('base64')}\n`)
      await expect(connect({ knownHostsFile: kh })).rejects.toThrow(/CHANGED: .*changed_known_hosts line 2/)
    })

    test('a new host only with acceptNewHostKey, which records it hashed', async () => {
      const kh = join(tmp, 'new_known_hosts')
      writeFileSync(kh, '')
      await expect(connect({ knownHostsFile: kh })).rejects.toThrow(/not in .*new_known_hosts/)
      const s = await connect({ knownHostsFile: kh, acceptNewHostKey: true })
      s.close()
      expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /)
      const again = await connect({ knownHostsFile: kh })
      again.close()
    })

    test('a key the server does not accept', async () => {
      const key = join(tmp, 'other_key')
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
      await expect(connect({ keyFile: key })).rejects.toThrow(/did not accept the key/)
    })

    test('unreachable addresses fail fast and clearly', async () => {
      const t0 = Date.now()
      // 10.213.0.0/16 is routed "unreachable" by testhost.sh except where a test host lives.
      await expect(connect({ host: '10.213.250.2' })).rejects.toMatchObject({
        message: expect.stringMatching(/no route to host/),
        exitCode: 3,
      })
      await expect(connect({ port: 2 })).rejects.toThrow(/connection refused/)
      console.log(`unreachable + refused: ${Date.now() - t0} ms`)
    })
  })

  describe('facts, plan, apply', () => {
    const templates = () => {
      const dir = join(tmp, 'templates')
      execFileSync('mkdir', ['-p', dir])
      writeFileSync(join(dir, 'app.conf'), '# chatmail test\nname = {{name}}\nvalid = {{valid}}\n')
      return dir
    }
    const spec = async (
      vars: { name: string; valid: string },
      extra: Partial<DeploySpec> = {},
    ): Promise<DeploySpec> => {
      const conf = await templateFile('/etc/chatmail-test/app.conf', 'app.conf', vars, {
        mode: '0640',
        templatesDir: templates(),
      })
      const unit = file(
        '/etc/systemd/system/chatmail-test.service',
        '[Unit]\nDescription=chatmail engine test\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n',
      )
      const relaySha = sha('#!/bin/sh\necho relay v1\n')
      const localBin = join(tmp, 'tool')
      writeFileSync(localBin, '#!/bin/sh\necho tool\n')
      const relaySource = { url: `http://${host.runnerIp}:${serverPort}/relay.tar.gz` }
      const relay = binary('/usr/local/bin/chatmail-test-relay', {
        x86_64: { sha256: relaySha, source: relaySource, tarMember: '*/relay' },
        aarch64: { sha256: relaySha, source: relaySource, tarMember: '*/relay' },
      })
      return {
        resources: [
          pkg('tree'),
          pkg('curl'),
          directory('/srv/chatmail-test', { mode: '0750' }),
          conf,
          unit,
          relay,
          binary('/usr/local/bin/chatmail-test-tool', {
            x86_64: { sha256: sha(readFileSync(localBin)), source: { file: localBin } },
            aarch64: { sha256: sha(readFileSync(localBin)), source: { file: localBin } },
          }),
          service('chatmail-test.service', {
            restartOn: [unit, conf, relay],
            validate: ['grep -q "^valid = yes" /etc/chatmail-test/app.conf'],
          }),
        ],
        ports: [{ port: 22, proto: 'tcp', owners: ['sshd'] }],
        ...extra,
      }
    }
    const since = async () =>
      (await guestShell(host, 'systemctl show -p ActiveEnterTimestamp chatmail-test.service')).trim()

    test('the facts script is one round trip and parses', async () => {
      const s = await spec({ name: 'a', valid: 'yes' })
      const before = session.roundTrips
      const r = await session.exec(factsScript(s.resources))
      expect(session.roundTrips - before).toBe(1)
      const facts = parseFacts(r.stdout)
      expect(facts.os).toMatchObject({ id: 'debian', versionId: '12' })
      expect(facts.uid).toBe(0)
      expect(facts.listeners.some((l) => l.port === 22 && l.processes.includes('sshd'))).toBe(true)
      expect(facts.files.get('/etc/chatmail-test/app.conf')).toEqual({ exists: false, notAFile: false })
      expect(facts.packages.get('tree')?.installed ?? false).toBe(false)
    })

    test('first deploy creates everything and starts the service', async () => {
      const r = await deploy({
        session,
        spec: await spec({ name: 'first', valid: 'yes' }),
        domain: host.domain,
        skipDnsCheck: true,
      })
      expect(r.plan.changed).toBe(8)
      expect(r.applied?.ok).toBe(true)
      expect(r.applied?.started).toEqual(['chatmail-test.service'])
      const out = await guestShell(
        host,
        'stat -c "%a %U %G" /etc/chatmail-test/app.conf /srv/chatmail-test; systemctl is-active chatmail-test.service; systemctl is-enabled chatmail-test.service; command -v tree; /usr/local/bin/chatmail-test-relay; /usr/local/bin/chatmail-test-tool',
      )
      expect(out.split('\n')).toEqual([
        '640 root root',
        '750 root root',
        'active',
        'enabled',
        '/usr/bin/tree',
        'relay v1',
        'tool',
        '',
      ])
    }, 180_000)

    test('a second deploy changes nothing, restarts nothing, in ≤ 4 round trips', async () => {
      const before = await since()
      const r = await deploy({
        session,
        spec: await spec({ name: 'first', valid: 'yes' }),
        domain: host.domain,
        skipDnsCheck: true,
      })
      expect(r.plan.changed).toBe(0)
      expect(r.applied).toBeUndefined()
      expect(r.roundTrips).toBeLessThanOrEqual(4)
      expect(await since()).toBe(before)
      console.log(`no-op redeploy: ${r.roundTrips} round trips, ${r.durationMs} ms`)
    })

    test('a changed config shows a diff and restarts only its service', async () => {
      const before = await since()
      const r = await deploy({ session, spec: await spec({ name: 'second', valid: 'yes' }), skipDnsCheck: true })
      expect(r.plan.changed).toBe(2)
      const conf = r.plan.items.find((i) => i.resource.id === 'file:/etc/chatmail-test/app.conf')!
      expect(conf.diff).toContain('-name = first\n+name = second')
      expect(r.applied?.restarted).toEqual(['chatmail-test.service'])
      expect(await since()).not.toBe(before)
    })

    test('a failed validation keeps the old file and the running service', async () => {
      const before = await since()
      await expect(
        deploy({ session, spec: await spec({ name: 'third', valid: 'no' }), skipDnsCheck: true }),
      ).rejects.toThrow(
        /validation of chatmail-test.service failed .* after changing file:\/etc\/chatmail-test\/app.conf.*previous files were restored/,
      )
      expect(await guestShell(host, 'cat /etc/chatmail-test/app.conf')).toContain('name = second')
      expect(await since()).toBe(before)
    })

    test('a foreign process on a claimed port stops the deploy before any change', async () => {
      const s = await spec({ name: 'fourth', valid: 'yes' }, { ports: [{ port: 22, proto: 'tcp', owners: ['nginx'] }] })
      await expect(deploy({ session, spec: s, skipDnsCheck: true })).rejects.toThrow(/port 22\/tcp is held by sshd/)
      expect(await guestShell(host, 'cat /etc/chatmail-test/app.conf')).toContain('name = second')
    })

    test('the host lock keeps a second deploy out until the first ends', async () => {
      const other = await connect()
      try {
        const lock = await HostLock.acquire(other, "printf 'end\\n'", 'the-other-deploy')
        await expect(
          deploy({ session, spec: await spec({ name: 'second', valid: 'yes' }), skipDnsCheck: true }),
        ).rejects.toThrow(/another deploy is running on .*the-other-deploy/)
        await lock.release(['lock test'])
        const r = await deploy({ session, spec: await spec({ name: 'second', valid: 'yes' }), skipDnsCheck: true })
        expect(r.plan.changed).toBe(0)
      } finally {
        other.close()
      }
    })

    test('a unit that fails on its new files gets its old ones back; the others still get theirs', async () => {
      const unitFile = (name: string, pre: string) =>
        file(
          `/etc/systemd/system/chatmail-${name}.service`,
          `[Service]\nExecStartPre=${pre}\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n`,
        )
      const twoServices = (failing: string, after: string): DeploySpec => {
        const failConf = file('/etc/chatmail-fail.conf', failing)
        const failUnit = unitFile('fail', '/bin/grep -q ^good /etc/chatmail-fail.conf')
        const afterConf = file('/etc/chatmail-after.conf', after)
        const afterUnit = unitFile('after', '/bin/true')
        return {
          resources: [
            failConf,
            failUnit,
            afterConf,
            afterUnit,
            service('chatmail-fail.service', { restartOn: [failConf, failUnit] }),
            service('chatmail-after.service', { restartOn: [afterConf, afterUnit] }),
          ],
          ports: [],
        }
      }
      await deploy({ session, spec: twoServices('good 1\n', 'after 1\n'), skipDnsCheck: true })
      const since = (unit: string) => guestShell(host, `systemctl show -p ActiveEnterTimestampMonotonic ${unit}`)
      const failBefore = await since('chatmail-fail')
      const afterBefore = await since('chatmail-after')
      const err = await deploy({ session, spec: twoServices('bad\n', 'after 2\n'), skipDnsCheck: true }).catch(
        (e: Error) => e,
      )
      expect(err).toBeInstanceOf(Error)
      expect((err as Error).message).toMatch(
        /systemctl restart chatmail-fail.service failed: .*chatmail-fail.service.*; its previous files were restored and it runs on them again/,
      )
      expect(
        await guestShell(host, 'cat /etc/chatmail-fail.conf; systemctl is-active chatmail-fail chatmail-after'),
      ).toBe('good 1\nactive\nactive\n')
      expect(await since('chatmail-fail')).not.toBe(failBefore)
      // The service after it was restarted on its new file, not left on the old one.
      expect(await guestShell(host, 'cat /etc/chatmail-after.conf')).toBe('after 2\n')
      expect(await since('chatmail-after')).not.toBe(afterBefore)
      await guestShell(
        host,
        'systemctl disable --now chatmail-fail chatmail-after; rm -f /etc/systemd/system/chatmail-fail.service /etc/systemd/system/chatmail-after.service; systemctl daemon-reload',
      )
    })

    test('a dry run changes nothing on the host: no audit line, no lock or owner file', async () => {
      const state =
        'wc -l </var/log/chatmail-deploy.log; ls /run/lock | grep chatmail-deploy || true; cat /run/lock/chatmail-deploy.owner 2>/dev/null || true'
      // A host that has not seen a deploy since boot has no lock files; one that has keeps them as they are.
      for (const setup of [
        'rm -f /run/lock/chatmail-deploy.*',
        'touch /run/lock/chatmail-deploy.lock /run/lock/chatmail-deploy.apply && echo earlier >/run/lock/chatmail-deploy.owner',
      ]) {
        await guestShell(host, setup)
        const before = await guestShell(host, state)
        const r = await deploy({
          session,
          spec: await spec({ name: 'dry', valid: 'yes' }),
          skipDnsCheck: true,
          dryRun: true,
        })
        expect(r.plan.changed).toBeGreaterThan(0)
        expect(await guestShell(host, state)).toBe(before)
      }
      await guestShell(host, 'rm -f /run/lock/chatmail-deploy.owner')
      expect(await guestShell(host, 'cat /etc/chatmail-test/app.conf')).toContain('name = second')
    })

    test('every run leaves an audit line', async () => {
      const log = await guestShell(host, 'cat /var/log/chatmail-deploy.log')
      const lines = log.trim().split('\n')
      expect(lines.filter((l) => / result=ok /.test(l)).length).toBeGreaterThanOrEqual(3)
      expect(lines.some((l) => / result=failed .*validation/.test(l))).toBe(true)
      expect(lines.some((l) => / result=preflight-failed /.test(l))).toBe(true)
      expect(lines).toContain('lock test')
    })
  })
})
