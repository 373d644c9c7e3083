import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  allocateAsCore,
  type Core,
  coreSkipReason,
  createFence,
  dcaccountLink,
  type Fence,
  hostHttps,
  loginParam,
  newAccountRefusal,
  ourIceServer,
  receiveText,
  type StrictTls,
  secureJoinAndExchange,
  startCore,
  withRegistration,
} from '../helpers/deltachat.js'
import { type DeployedHost, startDeployedHost } from '../helpers/deployed-host.js'
import type { Pebble } from '../helpers/pebble.js'
import { guestShell, type TestHost, testHostSkipReason } from '../helpers/testhost.js'

const OPTS = { name: 'th-acme', index: 11, domain: 'th-acme.test', acme: true }
// The real Delta Chat core's fence (10.213.85.0/30), from the range of the deltachat tests.
const FENCE = { name: 'dc85', index: 85 }
const coreSkip = coreSkipReason()
const hasPebble = ['/usr/bin/pebble', '/usr/bin/pebble-challtestsrv'].every((f) => existsSync(f))
const skip = testHostSkipReason() ?? (hasPebble ? undefined : 'missing pebble (run: bash scripts/test-deps.sh)')

interface Check {
  id: string
  status: string
  detail: string
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
  let d: DeployedHost | undefined
  let host: TestHost
  let pebble: Pebble
  let dir: string
  let rootFile: string
  let rootPem: string
  const deploy = (...extra: string[]) => (d as DeployedHost).redeploy(...extra)
  const cli = (args: string[]) => (d as DeployedHost).cli(args)
  const guestCert = async (path: string) => new X509Certificate(await guestShell(host, `cat ${path}`))

  // The first deploy, with the certificate from pebble; the first test judges it.
  beforeAll(async () => {
    d = await startDeployedHost(OPTS)
    ;({ host, dir } = d)
    ;({ pebble, rootPem, rootFile } = d.acme as NonNullable<DeployedHost['acme']>)
  }, 1_200_000)

  afterAll(async () => {
    await d?.stop()
  }, 120_000)

  test('the first deploy gets a certificate from pebble over HTTP-01 and installs it; doctor green', async () => {
    const r = (d as DeployedHost).first
    const out = JSON.parse(r.stdout)
    expect(out.changed).toBeGreaterThan(0)
    expect(notOk(out.doctor.checks), JSON.stringify(notOk(out.doctor.checks), null, 1)).toEqual([])
    expect(out.doctor.status).toBe('ok')

    // The HTTP-01 challenge was really fetched from the guest's port 80 (nginx, the webroot).
    const log = pebble.log()
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
    // The names the zone points at the server: the domain and mta-sts. (the MTA-STS policy).
    expect(installed.subjectAltName?.split(', ').sort()).toEqual(
      [`DNS:${host.domain}`, `DNS:mta-sts.${host.domain}`].sort(),
    )
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
    expect(renewal).toContain(`server = ${pebble.directoryUrl}`)
    expect(renewal).toMatch(/authenticator = webroot/)
  }, 120_000)

  test('IMAP, HTTPS and TURN-over-TLS serve the pebble certificate, valid for the domain', async () => {
    const installed = await guestCert('/etc/chatmail/tls/fullchain.pem')
    for (const port of [993, 443, 5349]) {
      const s = await served(host.host, port, host.domain, rootPem)
      expect({ port, ...s }).toEqual({ port, authorized: true, serial: installed.serialNumber })
    }
    // Not trusted without pebble's root: the chain really is pebble's.
    const without = await served(host.host, 993, host.domain, pebble.tlsCaPem)
    expect(without.authorized).toBe(false)

    // The doctor, as an operator runs it later, with pebble's root as --ca (no NODE_EXTRA_CA_CERTS).
    const doc = await cli(['doctor', host.domain, '--ca', rootFile, '--json', '--timeout', '10'])
    const report = JSON.parse(doc.stdout)
    expect(notOk(report.checks), JSON.stringify(notOk(report.checks), null, 1)).toEqual([])
    expect(doc.code, doc.stderr).toBe(0)
    expect(report.checks.find((c: Check) => c.id === 'imap.tls')?.status).toBe('ok')
  }, 120_000)

  test('a second deploy changes nothing and restarts nothing', async () => {
    const units = 'dovecot postfix coturn nginx iroh-relay chatmail-metadata'
    const before = await guestShell(host, `systemctl show -p ActiveEnterTimestampMonotonic ${units}`)
    const certBefore = await guestShell(host, 'sha256sum /etc/chatmail/tls/fullchain.pem')
    const r = await deploy()
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
    const out = JSON.parse(r.stdout)
    const changes = (out.resources as { action: string }[]).filter((x) => x.action !== 'unchanged')
    expect(out.changed, JSON.stringify(changes, null, 1).slice(0, 4000)).toBe(0)
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

  // ------------------------------------------------------------------ a real Delta Chat core

  /**
   * Delta Chat core 2.62 checks certificates strictly against the roots built into it and nothing
   * else: rustls with webpki-roots' Mozilla set (src/net/tls.rs, tls/danger.rs); no system store,
   * no SSL_CERT_FILE/SSL_CERT_DIR (those reach only the OpenSSL it uses when checks are off), no
   * API to add a root. Its one test escape, names whose first label starts with "_", needs a
   * certificate for such a name, which pebble (like every CA) refuses. So pebble's root cannot be
   * made trusted: core's own dcaccount: handling is shown to stop at exactly that, and the accounts
   * are made from the same sign-up link by the runner, which checks the chain against pebble's root
   * strictly; core then configures with what the link gave (address and password) and its
   * certificate checks off. Everything after TLS is the real core against the ACME host.
   */
  describe.skipIf(coreSkip)(
    `a real Delta Chat core on the ACME host${coreSkip ? ` (skipped: ${coreSkip})` : ''}`,
    () => {
      let fence: Fence
      let core: Core
      let strict: StrictTls
      const redeploy = () => deploy('--no-doctor')
      const accountLines = async () => Number(await guestShell(host, 'wc -l </var/lib/chatmail-accounts/accounts'))
      const accounts: { a?: number; b?: number; chatB?: number } = {}

      /** The sign-up link's account, created by a strictly checked POST from the runner. */
      const signUpByRunner = async (link: string): Promise<{ email: string; password: string }> => {
        const url = new URL(link.slice('dcaccount:'.length))
        expect(url.host).toBe(host.domain)
        const r = await hostHttps(host.host, 'POST', url.pathname + url.search, strict)
        expect(r.status, r.body).toBe(200)
        return JSON.parse(r.body) as { email: string; password: string }
      }
      /** An account in core from a sign-up link: core recognises it, the runner follows it, core configures. */
      const signUp = async (link: string): Promise<{ id: number; email: string; ms: number }> => {
        const id = await core.rpc.addAccount()
        const qr = await core.rpc.checkQr(id, link)
        expect(qr).toMatchObject({ kind: 'account', domain: host.domain })
        const { email, password } = await signUpByRunner(link)
        expect(email).toMatch(new RegExp(`^[a-z0-9]{9}@${host.domain.replaceAll('.', '\\.')}$`))
        const t0 = performance.now()
        await core.rpc.addOrUpdateTransport(id, loginParam(email, password, true))
        const ms = performance.now() - t0
        expect(await core.rpc.isConfigured(id)).toBe(true)
        return { id, email, ms }
      }

      beforeAll(async () => {
        strict = { servername: host.domain, ca: rootPem }
        fence = await createFence({ ...FENCE, hosts: [{ ip: host.host, names: [host.domain] }] })
        core = await startCore(fence)
      }, 120_000)

      afterAll(async () => {
        await core?.close().catch(() => {})
        await fence?.close().catch(() => {})
      }, 60_000)

      test('the sign-up page’s dcaccount: link: core recognises it, and its own sign-up stops at pebble’s root', async () => {
        const page = await hostHttps(host.host, 'GET', '/', strict)
        const link = dcaccountLink(page.body)
        expect(link).toBe(`dcaccount:https://${host.domain}/new`)
        const id = await core.rpc.addAccount()
        expect(await core.rpc.checkQr(id, link!)).toMatchObject({ kind: 'account', domain: host.domain })
        const before = await accountLines()
        // addTransportFromQr POSTs to /new with strict checks: pebble's chain is not among its roots.
        await expect(core.rpc.addTransportFromQr(id, link!)).rejects.toThrow(/UnknownIssuer/)
        expect(await accountLines()).toBe(before)
        await core.rpc.removeAccount(id)
      }, 60_000)

      test('two accounts from the sign-up link; Secure-Join; an encrypted message each way; iceServers() has our TURN, and its credentials allocate', async () => {
        const link = dcaccountLink((await hostHttps(host.host, 'GET', '/', strict)).body)!
        const a = await signUp(link)
        const b = await signUp(link)
        expect(a.email).not.toBe(b.email)
        process.stderr.write(
          `core configure (ACME host, address + password): ${Math.round(a.ms)} ms, ${Math.round(b.ms)} ms\n`,
        )
        await core.rpc.startIo(a.id)
        await core.rpc.startIo(b.id)
        const x = await secureJoinAndExchange(core, a.id, b.id)
        process.stderr.write(
          `ACME host: Secure-Join ${Math.round(x.secureJoinMs)} ms; message b→a ${Math.round(x.messageMs[0])} ms, a→b ${Math.round(x.messageMs[1])} ms (padlock shown)\n`,
        )
        Object.assign(accounts, { a: a.id, b: b.id, chatB: x.chatB })

        // Core resolves the TURN host (the domain) itself and lists it by address.
        const turnUrl = `turn:${host.host}:3478`
        const ice = await ourIceServer(core, a.id, turnUrl)
        const { username, credential } = ice
        expect(Number(username)).toBeGreaterThan(Date.now() / 1000)
        const verify = await cli(['turn-cred', '--verify', `${host.domain}:3478:${username}:${credential}`])
        expect(verify.code, verify.stdout + verify.stderr).toBe(0)
        const bad = await cli(['turn-cred', '--verify', `${host.domain}:3478:${username}:x${credential!.slice(1)}`])
        expect(bad.code).toBe(1)
        // coturn takes exactly what core handed out (a real Allocate, released), and refuses it with
        // one character of the credential changed.
        const { allocated } = await allocateAsCore(ice, turnUrl)
        expect(allocated.relayed.address).toBe(host.host)
      }, 300_000)

      test('a redeploy changes nothing and both accounts keep working', async (ctx) => {
        if (accounts.a === undefined) ctx.skip('needs the two accounts of the sign-up test')
        const count = await accountLines()
        const r = await redeploy()
        expect(r.code, r.stderr).toBe(0)
        expect(JSON.parse(r.stdout).changed).toBe(0)
        expect(await accountLines()).toBe(count)
        const arriving = receiveText(core, accounts.a!, 'after the redeploy')
        await core.rpc.miscSendTextMessage(accounts.b!, accounts.chatB!, 'after the redeploy')
        expect((await arriving).msg.showPadlock).toBe(true)
      }, 300_000)

      test('registration closed: the sign-up link and a typed new address are refused with the reason', async () => {
        await withRegistration(dir, 'closed', redeploy, async () => {
          const refused = await hostHttps(host.host, 'POST', '/new', strict)
          expect(refused.status).toBe(403)
          expect(JSON.parse(refused.body).reason).toMatch(/registration is closed/)
          const error = await newAccountRefusal(core, `newuser01@${host.domain}`, 'a-long-enough-password', true)
          expect(error).toMatch(/registration is closed/)
        })
      }, 300_000)

      test('registration invite: `chatmail invite` makes a link that creates one account, then no more', async () => {
        await withRegistration(dir, 'invite', redeploy, async () => {
          const without = await hostHttps(host.host, 'POST', '/new', strict)
          expect(without.status).toBe(403)
          expect(JSON.parse(without.body).reason).toMatch(/invite/)
          const inv = await cli([
            'invite',
            `root@${host.domain}`,
            '-i',
            host.keyFile,
            '--known-hosts',
            host.knownHostsFile,
            '--json',
          ])
          expect(inv.code, inv.stderr).toBe(0)
          const { link, token } = JSON.parse(inv.stdout) as { link: string; token: string }
          expect(link).toBe(`dcaccount:https://${host.domain}/new?i=${token}`)
          const c = await signUp(link)
          await core.rpc.startIo(c.id)
          const again = await hostHttps(host.host, 'POST', `/new?i=${token}`, strict)
          expect(again.status, again.body).toBe(403)
          expect(JSON.parse(again.body).reason).toMatch(/used up/)
          await core.rpc.removeAccount(c.id)
        })
      }, 300_000)
    },
  )
})
