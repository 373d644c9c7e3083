import { X509Certificate } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { type Pebble, startPebble } from '../helpers/pebble.js'
import { type StandInMirror, serveStandInMirror } from '../helpers/standin-tarball.js'
import {
  deployHostArgs,
  guestShell,
  startTestHost,
  stopTestHost,
  type TestHost,
  testHostSkipReason,
} from '../helpers/testhost.js'

const OPTS = { name: 'th-acme', index: 11 }
const _BIN = resolve('bin/run.js')
const hasPebble = ['/usr/bin/pebble', '/usr/bin/pebble-challtestsrv'].every((f) => existsSync(f))
const skip = testHostSkipReason() ?? (hasPebble ? undefined : 'missing pebble (run: bash scripts/test-deps.sh)')

interface Run {
  code: number
  stdout: string
  stderr: string
}

interface Check {
  id: string
  status: string
  detail: string
}

/** The built CLI, in a private mount namespace whose /etc/hosts maps the test domain to the guest. */
function cli(hostsFile: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const wrap = [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    'mount --bind "$0" /etc/hosts && exec "$@"',
    hostsFile,
  ]
  return runCli(args, { cwd, env, timeoutMs: 600_000, wrap })
}

/** The certificate a TLS port serves, and whether it verifies against `ca` for `servername`. */
function served(
  ip: string,
  port: number,
  servername: string,
  ca: string,
): Promise<{ authorized: boolean; error?: string; serial: string }> {
  return new Promise((ok, fail) => {
    const s = tlsConnect({ host: ip, port, servername, ca, rejectUnauthorized: false, timeout: 10_000 })
    s.once('secureConnect', () => {
      const cert = s.getPeerCertificate()
      const error = s.authorizationError ? String(s.authorizationError) : undefined
      ok({ authorized: s.authorized, ...(error ? { error } : {}), serial: cert.serialNumber })
      s.destroy()
    })
    s.once('timeout', () => s.destroy(new Error(`TLS to ${ip}:${port} timed out`)))
    s.once('error', fail)
  })
}

const notOk = (checks: Check[]) => checks.filter((c) => c.status !== 'ok')

describe.skipIf(skip)(`chatmail deploy host with ACME from pebble${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let host: TestHost
  let pebble: Pebble | undefined
  let dir: string
  let mirror: StandInMirror | undefined
  let hostsFile: string
  let rootFile: string
  let rootPem: string
  const deployArgs = (...extra: string[]) =>
    deployHostArgs(
      host,
      `root@${host.domain}`,
      mirror as StandInMirror,
      '--skip-dns-check',
      '--yes',
      '--json',
      ...extra,
    )
  const deploy = (...extra: string[]) => cli(hostsFile, deployArgs(...extra), dir, { NODE_EXTRA_CA_CERTS: rootFile })
  const guestCert = async (path: string) => new X509Certificate(await guestShell(host, `cat ${path}`))

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chatmail-acme-'))
    host = await startTestHost(OPTS)
    pebble = await startPebble({ listenIp: host.runnerIp, targetIp: host.host })
    rootPem = await pebble.rootCaPem()
    rootFile = join(dir, 'pebble-root.pem')
    writeFileSync(rootFile, rootPem)
    hostsFile = join(dir, 'hosts')
    writeFileSync(hostsFile, `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n${host.host} ${host.domain}\n`)

    // The stand-in iroh-relay, served like a release mirror (see deploy.test.ts).
    mirror = await serveStandInMirror(dir, host.runnerIp)

    // Environment: the guest trusts pebble's API certificate, as a real host trusts Let's Encrypt's.
    await guestShell(
      host,
      `cat >/usr/local/share/ca-certificates/chatmail-test-pebble.crt <<'EOF'\n${pebble.tlsCaPem.trim()}\nEOF\nupdate-ca-certificates >/dev/null`,
    )

    const init = await cli(
      hostsFile,
      ['init', host.domain, '--tls', 'acme', '--acme-email', `admin@${host.domain}`],
      dir,
    )
    expect(init.code, init.stderr).toBe(0)
    const path = join(dir, 'chatmail.toml')
    const toml = readFileSync(path, 'utf8')
    const line = /^(# )?acme_directory = .*$/m
    expect(toml).toMatch(line)
    writeFileSync(path, toml.replace(line, `acme_directory = "${pebble.directoryUrl}"`))
  }, 300_000)

  afterAll(async () => {
    mirror?.close()
    await pebble?.stop().catch(() => {})
    await stopTestHost(OPTS).catch(() => {})
  }, 120_000)

  test('the first deploy gets a certificate from pebble over HTTP-01 and installs it; doctor green', async () => {
    const r = await deploy()
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}\n--- pebble:\n${pebble?.log().slice(-3000)}`).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.changed).toBeGreaterThan(0)
    expect(notOk(out.doctor.checks), JSON.stringify(notOk(out.doctor.checks), null, 1)).toEqual([])
    expect(out.doctor.status).toBe('ok')

    // The HTTP-01 challenge was really fetched from the guest's port 80 (nginx, the webroot).
    const log = pebble?.log() ?? ''
    expect(log).toContain(`Attempting to validate w/ HTTP: http://${host.domain}:80/.well-known/acme-challenge/`)
    expect(log).toMatch(/set VALID by completed challenge/)
    expect(
      await guestShell(
        host,
        `grep -c '^${host.runnerIp} .*GET /.well-known/acme-challenge/[^ ]* HTTP/1.1" 200' /var/log/nginx/access.log`,
      ),
    ).not.toBe('0\n')

    // Issued by pebble's intermediate (not the self-signed placeholder), for the domain.
    const installed = await guestCert('/etc/chatmail/tls/fullchain.pem')
    expect(installed.issuer).toMatch(/Pebble Intermediate CA/)
    expect(installed.issuer).not.toBe(installed.subject)
    expect(installed.subjectAltName).toBe(`DNS:${host.domain}`)
    expect(await guestShell(host, 'openssl x509 -in /etc/chatmail/tls/fullchain.pem -noout -issuer')).toMatch(
      /issuer=CN ?= ?Pebble Intermediate CA/,
    )
    // The installed files are certbot's live ones; the key is private to root and coturn.
    expect(
      await guestShell(
        host,
        `cmp /etc/letsencrypt/live/${host.domain}/fullchain.pem /etc/chatmail/tls/fullchain.pem && cmp /etc/letsencrypt/live/${host.domain}/privkey.pem /etc/chatmail/tls/privkey.pem && stat -c '%a %U:%G' /etc/chatmail/tls/privkey.pem`,
      ),
    ).toBe('640 root:turnserver\n')
    // certbot keeps pebble as the server for renewals, with the webroot.
    const renewal = await guestShell(host, `cat /etc/letsencrypt/renewal/${host.domain}.conf`)
    expect(renewal).toContain(`server = ${pebble?.directoryUrl}`)
    expect(renewal).toMatch(/authenticator = webroot/)
  }, 900_000)

  test('IMAP, HTTPS and TURN-over-TLS serve the pebble certificate, valid for the domain', async () => {
    const installed = await guestCert('/etc/chatmail/tls/fullchain.pem')
    for (const port of [993, 443, 5349]) {
      const s = await served(host.host, port, host.domain, rootPem)
      expect({ port, ...s }).toEqual({ port, authorized: true, serial: installed.serialNumber })
    }
    // Not trusted without pebble's root: the chain really is pebble's.
    const without = await served(host.host, 993, host.domain, pebble?.tlsCaPem ?? '')
    expect(without.authorized).toBe(false)

    // The doctor, as an operator runs it later, with pebble's root as --ca (no NODE_EXTRA_CA_CERTS).
    const d = await cli(hostsFile, ['doctor', host.domain, '--ca', rootFile, '--json', '--timeout', '10'], dir)
    const report = JSON.parse(d.stdout)
    expect(notOk(report.checks), JSON.stringify(notOk(report.checks), null, 1)).toEqual([])
    expect(d.code, d.stderr).toBe(0)
    expect(report.checks.find((c: Check) => c.id === 'imap.tls')?.status).toBe('ok')
  }, 120_000)

  test('a second deploy changes nothing and restarts nothing', async () => {
    const units = 'dovecot postfix coturn nginx iroh-relay chatmail-metadata'
    const before = await guestShell(host, `systemctl show -p ActiveEnterTimestampMonotonic ${units}`)
    const certBefore = await guestShell(host, 'sha256sum /etc/chatmail/tls/fullchain.pem')
    const r = await deploy()
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.changed).toBe(0)
    expect(out.restarted).toEqual([])
    expect(out.doctor.status).toBe('ok')
    expect(await guestShell(host, `systemctl show -p ActiveEnterTimestampMonotonic ${units}`)).toBe(before)
    expect(await guestShell(host, 'sha256sum /etc/chatmail/tls/fullchain.pem')).toBe(certBefore)
    expect(await guestShell(host, 'ls /etc/letsencrypt/archive/*/ | grep -c ^cert')).toBe('1\n')
  }, 300_000)

  test('renewal: certbot.timer is active, and a renewal goes through the hook into every service', async () => {
    expect(await guestShell(host, 'systemctl is-enabled certbot.timer; systemctl is-active certbot.timer')).toBe(
      'enabled\nactive\n',
    )
    const old = await guestCert('/etc/chatmail/tls/fullchain.pem')
    // What the timer runs (certbot renew), forced: the hook must install and reload.
    await guestShell(host, 'certbot renew --force-renewal --no-random-sleep-on-renew --quiet')
    const renewed = await guestCert('/etc/chatmail/tls/fullchain.pem')
    expect(renewed.serialNumber).not.toBe(old.serialNumber)
    expect(renewed.issuer).toMatch(/Pebble Intermediate CA/)
    for (const port of [993, 443, 5349]) {
      const s = await served(host.host, port, host.domain, rootPem)
      expect({ port, ...s }).toEqual({ port, authorized: true, serial: renewed.serialNumber })
    }
    // The renewed certificate is what the deploy expects: nothing to change.
    const r = await deploy()
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
    expect(JSON.parse(r.stdout).changed).toBe(0)
  }, 300_000)
})
