/**
 * Our server in today's chatmail network (issue 26), with REAL Delta Chat cores (2.62, fenced)
 * against a server deployed on a `_`-prefixed domain (Debian 13): such a server is self-signed
 * (no public CA issues a certificate for a name starting with `_`), and core, since 2.46, skips
 * the chain check for such hostnames while still checking that the certificate names the host
 * (core src/net/tls/danger.rs). So core's own strict sign-up works there:
 *   - the page shows the `dcaccount:` QR code (not the `dclogin:` fallback of other self-signed
 *     servers); core scans it, POSTs to /new itself and configures with strict checks;
 *   - the bare-domain form `dcaccount:DOMAIN` (no HTTP: core invents a 9-character address and a
 *     22-character password and logs in; core's multi-relay onboarding uses it) makes the account on
 *     the first login, and a closed registration refuses it with the reason core shows;
 *   - the old sign-up URL /cgi-bin/newemail.py answers as /new; a browser's GET of either is sent
 *     on to `dcaccount:https://DOMAIN/new`, as chatmail relays do.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  type Core,
  type CoreOnHost,
  coreSkipReason,
  dcaccountLink,
  hostHttps,
  loginParam,
  secureJoinAndExchange,
  signUp,
  startCoreOnHost,
  withRegistration,
} from '../helpers/deltachat.js'
import type { DeployedHost } from '../helpers/deployed-host.js'
import { guestShell } from '../helpers/testhost.js'

const DOMAIN = '_us140.test'
const HOST = { name: 'th-us140', index: 140, domain: DOMAIN, suite: 'trixie' as const }
const FENCE = { name: 'us141', index: 141 }
const skip = coreSkipReason()

describe.skipIf(skip)(`real cores against a server on a _ domain${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let on: CoreOnHost | undefined
  let d: DeployedHost
  let core: Core
  /** The two accounts that sign up (by the page's QR code, and by the bare domain). */
  let a: number
  let b: number
  const page = (method: string, path: string) => hostHttps(d.host.host, method, path, { servername: DOMAIN })
  const redeploy = () => d.redeploy()
  const accountsFile = () => guestShell(d.host, 'cat /var/lib/chatmail-accounts/accounts')

  beforeAll(async () => {
    // The deploy's DNS preflight and doctor would have to resolve the test name on the runner (the
    // doctor is deploy.test.ts's subject; the cores below resolve it in their fence).
    on = await startCoreOnHost({ ...HOST, deployArgs: ['--no-doctor', '--skip-dns-check'] }, FENCE)
    ;({ d, core } = on)
  }, 900_000)

  afterAll(async () => {
    await on?.close()
  }, 120_000)

  test('the page shows the dcaccount: QR code; a browser is sent there from /new and the old URL, which signs up as /new', async () => {
    const home = await page('GET', '/')
    expect(home.status).toBe(200)
    expect(dcaccountLink(home.body)).toBe(`dcaccount:https://${DOMAIN}/new`)
    expect(home.body).toMatch(/<svg[^>]*>/)
    expect(home.body).not.toContain('signup.js')
    // A browser's GET: to the app, which POSTs (the invite token, if any, kept).
    for (const path of ['/new', '/cgi-bin/newemail.py']) {
      const r = await page('GET', path)
      expect(r.status, path).toBe(301)
      expect(r.headers.location, path).toBe(`dcaccount:https://${DOMAIN}/new`)
    }
    expect((await page('GET', '/cgi-bin/newemail.py?i=tok')).headers.location).toBe(
      `dcaccount:https://${DOMAIN}/new?i=tok`,
    )
    // The old URL on printed QR codes: a POST makes an account, as /new does.
    const old = await page('POST', '/cgi-bin/newemail.py')
    expect(old.status, old.body).toBe(200)
    const made = JSON.parse(old.body) as { email: string; password: string }
    expect(made.email).toMatch(/^[a-z0-9]{9}@_us140\.test$/)
    expect(await accountsFile()).toContain(`${made.email}\t`)
    // Core's strict checks accept this certificate by the `_` name only: the same account, with the
    // server named by its address (no `_` there, so the chain is checked), is refused under strict
    // checks (core says only that it found no server) and configures when invalid certificates are
    // accepted: the certificate check, nothing else, made the difference.
    const byAddress = async (checks: 'strict' | 'acceptInvalidCertificates') => {
      const id = await core.rpc.addAccount()
      try {
        const param = { ...loginParam(made.email, made.password, false, d.host.host), certificateChecks: checks }
        return await core.rpc.addOrUpdateTransport(id, param).then(
          () => 'configured',
          (err: unknown) => (err as Error).message,
        )
      } finally {
        await core.rpc.removeAccount(id)
      }
    }
    expect(await byAddress('strict')).toMatch(/could not find your mail server/i)
    expect(await byAddress('acceptInvalidCertificates')).toBe('configured')
  }, 120_000)

  test("a real core scans the page's dcaccount: QR code and configures with strict certificate checks", async () => {
    a = await core.rpc.addAccount()
    const r = await signUp(core, a, d.host.host, '', DOMAIN)
    expect(r.via).toBe('dcaccount')
    expect(r.addr).toMatch(/^[a-z0-9]{9}@_us140\.test$/)
    const [transport] = await core.rpc.listTransports(a)
    expect(transport?.certificateChecks ?? 'strict').toMatch(/^(strict|automatic)$/)
    process.stderr.write(`_ domain: configured from the page's dcaccount: link in ${Math.round(r.configureMs)} ms\n`)
  }, 120_000)

  test('the bare-domain dcaccount:DOMAIN: core invents address and password, the first login makes the account', async () => {
    b = await core.rpc.addAccount()
    const qr = `dcaccount:${DOMAIN}`
    expect(await core.rpc.checkQr(b, qr)).toMatchObject({ kind: 'account', domain: DOMAIN })
    const t0 = performance.now()
    await core.rpc.addTransportFromQr(b, qr)
    const ms = performance.now() - t0
    const [transport] = await core.rpc.listTransports(b)
    expect(transport?.addr).toMatch(/^[a-z0-9]{9}@_us140\.test$/)
    // Made by the first login (no POST /new): the service's log says so, and the file has it.
    expect(await accountsFile()).toContain(`${transport!.addr}\t`)
    const log = await guestShell(d.host, 'journalctl -u chatmail-accounts --no-pager -o cat')
    expect(log).toContain(`created account ${transport!.addr}`)
    process.stderr.write(`_ domain: configured from dcaccount:${DOMAIN} in ${Math.round(ms)} ms\n`)
  }, 120_000)

  test('the two accounts Secure-Join and message each other, end-to-end encrypted', async () => {
    const x = await secureJoinAndExchange(core, a, b)
    process.stderr.write(
      `_ domain: Secure-Join ${Math.round(x.secureJoinMs)} ms, messages ${x.messageMs.map(Math.round).join(' / ')} ms\n`,
    )
  }, 180_000)

  test("registration closed: core's bare-domain sign-up is refused, with the server's reason", async () => {
    await withRegistration(d.dir, 'closed', redeploy, async () => {
      const id = await core.rpc.addAccount()
      try {
        const refused = await core.rpc.addTransportFromQr(id, `dcaccount:${DOMAIN}`).then(
          () => 'configured',
          (err: unknown) => (err as Error).message,
        )
        expect(refused).toContain('registration is closed on this server')
      } finally {
        await core.rpc.removeAccount(id)
      }
    })
  }, 600_000)
})
