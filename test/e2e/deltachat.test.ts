/**
 * A REAL Delta Chat core (deltachat-rpc-server 2.62.0) against a server made by `chatmail deploy
 * host` on a real Debian test host: first IP-only (self-signed), then the same host made a server
 * with a domain name and a self-signed certificate (`init DOMAIN --tls self-signed`, redeployed).
 * The core runs fenced in a network namespace of its own (test/helpers/deltachat.ts): it reaches
 * the test host and nothing else; the fence's resolver answers the host's domain.
 */
import { once } from 'node:events'
import { createServer } from 'node:net'
import { networkInterfaces } from 'node:os'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { browserSkipReason, signUpInBrowser } from '../helpers/browser.js'
import {
  allocateAsCore,
  CONNECT_JS,
  type Core,
  coreSkipReason,
  createFence,
  dcaccountLink,
  type Fence,
  hostHttps,
  loginParam,
  ourIceServer,
  RESOLVE_JS,
  receiveText,
  secureJoinAndExchange,
  signUp,
  signupMissing,
  startCore,
  withRegistration,
} from '../helpers/deltachat.js'
import { type DeployedHost, startDeployedHost } from '../helpers/deployed-host.js'
import { realtimeExchange, withoutUdp } from '../helpers/realtime.js'
import { guestShell } from '../helpers/testhost.js'

const HOST = { name: 'th-dc-80', index: 80 }
const FENCE = { name: 'dc80', index: 81 }
const skip = coreSkipReason()

describe.skipIf(skip)(`a real Delta Chat core against a deployed server${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: DeployedHost
  let fence: Fence
  let core: Core
  const redeploy = () => d.redeploy('--no-doctor')

  // The relay on the host is the STAND-IN of iroh-relay 0.35 (the real binary cannot be had
  // here); on SIGTERM it logs its counters. A restart before the exchange zeroes them, one after
  // it logs the exchange's own: clients registered, packets forwarded between them.
  const relayStats = async () => {
    const before = (
      await guestShell(d.host, 'journalctl -u iroh-relay --no-pager -o cat | grep -c "^stand-in stats " || true')
    ).trim()
    await guestShell(d.host, 'systemctl restart iroh-relay')
    for (let i = 0; i < 50; i++) {
      const lines = (
        await guestShell(d.host, 'journalctl -u iroh-relay --no-pager -o cat | grep "^stand-in stats " || true')
      )
        .trim()
        .split('\n')
      if (lines.length > Number(before)) {
        return JSON.parse(lines.at(-1)!.slice('stand-in stats '.length)) as {
          registered: number
          packetsForwarded: number
        }
      }
      await new Promise((res) => setTimeout(res, 100))
    }
    throw new Error('iroh-relay logged no stand-in stats line on restart')
  }

  /** Realtime a→b and b→a with UDP dropped in the fence; the relay's counters show it carried them. */
  const realtimeThroughRelay = async (a: number, chatA: number, b: number, what: string) => {
    await relayStats()
    const r = await withoutUdp(fence, () => realtimeExchange(core, a, chatA, b))
    process.stderr.write(
      `webxdc realtime through the relay (${what}): a→b ${Math.round(r.ms[0])} ms, b→a ${Math.round(r.ms[1])} ms\n`,
    )
    const stats = await relayStats()
    process.stderr.write(`relay during the exchange (${what}): ${JSON.stringify(stats)}\n`)
    // Both accounts' iroh endpoints used the relay on the host, and it carried their packets.
    expect(stats.registered).toBeGreaterThanOrEqual(2)
    expect(stats.packetsForwarded).toBeGreaterThan(0)
  }

  beforeAll(async () => {
    // The deploy's own doctor is deploy.suite.ts's subject; this file checks the server with a real core.
    d = await startDeployedHost({ ...HOST, deployArgs: ['--no-doctor'] })
    fence = await createFence({ ...FENCE, hosts: [{ ip: d.host.host, names: [d.host.domain] }] })
    core = await startCore(fence)
  }, 900_000)

  afterAll(async () => {
    await core?.close().catch(() => {})
    await fence?.close().catch(() => {})
    await d?.stop()
  }, 120_000)

  test('the fence: the test host is reachable, nothing else is, and DNS answers at once', async () => {
    const nodeIn = (js: string, ...args: string[]) =>
      fence.exec([process.execPath, '-e', js, ...args]).then((r) => r.stdout.trim())
    // The test host, by address and by name.
    expect(await nodeIn(CONNECT_JS, d.host.host, '993')).toBe('connected')
    expect(JSON.parse(await nodeIn(RESOLVE_JS, d.host.domain))).toEqual([d.host.host])
    // Any other name: NXDOMAIN from the loopback resolver, not a timeout.
    expect(await nodeIn(RESOLVE_JS, 'deb.debian.org')).toBe('ENOTFOUND')
    expect(await nodeIn(RESOLVE_JS, 'use1-1.relay.iroh.network')).toBe('ENOTFOUND')

    // A server on every address of the runner: reachable from the runner, refused from the fence
    // at once (no route, or rejected), never a silent drop that would cost the core a timeout.
    const server = createServer((s) => s.end())
    server.listen(0, '0.0.0.0')
    await once(server, 'listening')
    const port = String((server.address() as { port: number }).port)
    try {
      const addrs = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && a.family === 'IPv4')
        .map((a) => a!.address)
      expect(addrs).toContain(fence.runnerIp)
      for (const a of addrs) {
        const r = await nodeIn(CONNECT_JS, a, port)
        expect(r, `from the fence to the runner's ${a}:${port}`).not.toBe('connected')
        expect(r, `from the fence to ${a}:${port}`).not.toBe('ETIMEDOUT')
      }
      // Another test host's range and a public address: no route at all.
      for (const a of ['10.213.250.2', '192.0.2.1', '203.0.113.1']) {
        expect(await nodeIn(CONNECT_JS, a, '443')).toMatch(/^E(NETUNREACH|HOSTUNREACH|CONNREFUSED)$/)
      }
    } finally {
      server.close()
    }

    // The core itself: an address on a domain nobody answers for fails, and fast (DNS answers).
    const id = await core.rpc.addAccount()
    const t0 = performance.now()
    await expect(
      core.rpc.addOrUpdateTransport(id, loginParam('nobody@example.org', 'not-a-password')),
    ).rejects.toThrow()
    process.stderr.write(
      `fence: configure of nobody@example.org failed after ${Math.round(performance.now() - t0)} ms\n`,
    )
    await core.rpc.removeAccount(id)
  }, 60_000)

  test('the sign-up page in a real browser (Chromium, fenced): its script shows a dclogin: link and a QR code that scans to it; core configures from that link', async (ctx) => {
    const missing = browserSkipReason() ?? (await signupMissing(d.host.host))
    if (missing) ctx.skip(missing)
    const ip = d.host.host
    const shown = await signUpInBrowser(fence, `https://${ip}/`)
    const address = /^dclogin:([^?]+)\?/.exec(shown.link)?.[1] ?? ''
    const esc = ip.replaceAll('.', '\\.')
    expect(address).toMatch(new RegExp(`^[a-z0-9]{9}@\\[${esc}\\]$`))
    expect(shown.link).toMatch(new RegExp(`\\?p=[A-Za-z0-9]{22}&v=1&ih=${esc}&sh=${esc}&ic=3$`))
    expect(shown.text).toBe(`Log in to ${address} with Delta Chat`)
    // The QR code a phone would scan from the screen carries exactly the link.
    expect(shown.qr).toBe(shown.link)
    expect(shown.errors).toEqual([])
    // The page, its script and /new, all from the server itself (data: is the QR code's image).
    const asked = shown.requests.filter((u) => !u.startsWith('data:'))
    expect(asked).toContain(`https://${ip}/new`)
    for (const u of asked) expect(u.startsWith(`https://${ip}/`), u).toBe(true)
    const id = await core.rpc.addAccount()
    try {
      expect(await core.rpc.checkQr(id, shown.link)).toEqual({ kind: 'login', address })
      await core.rpc.addTransportFromQr(id, shown.link)
      expect(await core.rpc.isConfigured(id)).toBe(true)
    } finally {
      await core.rpc.removeAccount(id)
    }
  }, 180_000)

  test('address + password (+ the server, which core cannot guess from user@[IP]) configure a core; iceServers() lists our TURN with credentials the secret made, and they allocate', async () => {
    const id = await core.rpc.addAccount()
    const t0 = performance.now()
    // The doctor is doctor@[IP] now: from a bracketed address core guesses imap.[IP] (no such name).
    // The app's way onto an IP-only server is the dclogin: link (below), which names the server.
    await core.rpc.addOrUpdateTransport(id, loginParam(d.doctor.user, d.doctor.password, true, d.host.host))
    const ms = performance.now() - t0
    process.stderr.write(`core configure (address + password, self-signed): ${Math.round(ms)} ms\n`)
    expect(await core.rpc.isConfigured(id)).toBe(true)
    const [transport] = await core.rpc.listTransports(id)
    expect(transport?.addr).toBe(d.doctor.user)
    await core.rpc.startIo(id)
    const turnUrl = `turn:${d.host.host}:3478`
    const ice = await ourIceServer(core, id, turnUrl)
    const { username, credential } = ice
    expect(username).toMatch(/^\d+$/)
    expect(Number(username)).toBeGreaterThan(Date.now() / 1000)
    // The credential is valid for this server's secret: the CLI verifies it from chatmail.toml.
    const verify = await d.cli(['turn-cred', '--verify', `${d.host.host}:3478:${username}:${credential}`])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    const bad = await d.cli(['turn-cred', '--verify', `${d.host.host}:3478:${username}:${credential!.slice(1)}x`])
    expect(bad.code).toBe(1)
    // And coturn takes them: a real Allocate with exactly what core handed out; one character of
    // the credential changed is refused.
    await expectTurnAllocates(ice, turnUrl)
    await core.rpc.stopIo(id)
    await core.rpc.removeAccount(id)
  }, 120_000)

  // ------------------------------------------------------------------ sign-up, as the app does it

  const accounts: { a?: number; b?: number; chatA?: number; chatB?: number } = {}

  /** allocateAsCore (it judges: relayed at the host, released, the changed credential refused), logged. */
  const expectTurnAllocates = async (ice: Parameters<typeof allocateAsCore>[0], url: string) => {
    const { allocated, refused } = await allocateAsCore(ice, url)
    expect(allocated.relayed.address).toBe(d.host.host)
    process.stderr.write(
      `TURN with core's credential: relayed ${allocated.relayed.address}:${allocated.relayed.port} (lifetime ${allocated.lifetime} s); changed credential: ${refused.code} ${refused.message}\n`,
    )
  }

  test('two accounts from the sign-up link through core’s QR handling; Secure-Join; an encrypted message each way', async (ctx) => {
    const missing = await signupMissing(d.host.host)
    if (missing) ctx.skip(missing)
    const a = await core.rpc.addAccount()
    const b = await core.rpc.addAccount()
    const ua = await signUp(core, a, d.host.host)
    const ub = await signUp(core, b, d.host.host)
    process.stderr.write(
      `core configure from dclogin: ${Math.round(ua.configureMs)} ms, ${Math.round(ub.configureMs)} ms\n`,
    )
    expect(ua.addr).not.toBe(ub.addr)
    // core 2.62 keeps is_chatmail internal (no config key); XCHATMAIL is asserted in signup.suite.ts.
    await core.rpc.startIo(a)
    await core.rpc.startIo(b)

    // Every message passes chatmail-filter (encryption-only mail): the handshake and the messages
    // below must get through it, and it must have refused none of them.
    expect((await guestShell(d.host, 'systemctl is-active chatmail-filter; postconf -h smtpd_milters')).trim()).toBe(
      'active\nunix:chatmail-filter/milter.sock',
    )
    const x = await secureJoinAndExchange(core, a, b)
    process.stderr.write(
      `Secure-Join: ${Math.round(x.secureJoinMs)} ms; message b→a ${Math.round(x.messageMs[0])} ms, a→b ${Math.round(x.messageMs[1])} ms (padlock shown)\n`,
    )
    Object.assign(accounts, { a, b, chatA: x.chatA, chatB: x.chatB })
    expect(
      (await guestShell(d.host, 'journalctl -u chatmail-filter --no-pager -o cat | grep -c "refuse" || true')).trim(),
    ).toBe('0')
  }, 300_000)

  test('webxdc realtime between the two accounts goes through the server’s iroh relay (UDP blocked)', async (ctx) => {
    if (accounts.a === undefined) ctx.skip('needs the two accounts of the sign-up test')
    await realtimeThroughRelay(accounts.a!, accounts.chatA!, accounts.b!, 'IP-only')
  }, 240_000)

  test('a redeploy changes nothing and both accounts keep working', async (ctx) => {
    if (accounts.a === undefined) ctx.skip('needs the two accounts of the sign-up test')
    const r = await d.redeploy('--no-doctor')
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).changed).toBe(0)
    const arriving = receiveText(core, accounts.a!, 'after the redeploy')
    await core.rpc.miscSendTextMessage(accounts.b!, accounts.chatB!, 'after the redeploy')
    expect((await arriving).msg.showPadlock).toBe(true)
  }, 300_000)

  test('registration closed: a new account is refused with a clear reason', async (ctx) => {
    const missing = await signupMissing(d.host.host)
    if (missing) ctx.skip(missing)
    await withRegistration(d.dir, 'closed', redeploy, async () => {
      const refused = await hostHttps(d.host.host, 'POST', '/new')
      expect(refused.status).toBeGreaterThanOrEqual(400)
      expect(JSON.parse(refused.body).reason).toMatch(/closed/)
    })
  }, 300_000)

  test('registration invite: an invite token creates one account, then no more', async (ctx) => {
    const missing = await signupMissing(d.host.host)
    if (missing) ctx.skip(missing)
    if ((await d.cli(['invite', '--help'])).code !== 0) ctx.skip('no `chatmail invite` command yet (issue 11)')
    await withRegistration(d.dir, 'invite', redeploy, async () => {
      const without = await hostHttps(d.host.host, 'POST', '/new')
      expect(without.status).toBeGreaterThanOrEqual(400)
      expect(JSON.parse(without.body).reason).toMatch(/invite/)
      const inv = await d.cli([
        'invite',
        `root@${d.host.host}`,
        '-i',
        d.host.keyFile,
        '--known-hosts',
        d.host.knownHostsFile,
        '--uses',
        '1',
        '--json',
      ])
      expect(inv.code, inv.stderr).toBe(0)
      const { token, link } = JSON.parse(inv.stdout) as { token: string; link: string }
      expect(link).toContain(token)
      const id = await core.rpc.addAccount()
      const first = await signUp(core, id, d.host.host, `?i=${encodeURIComponent(token)}`)
      expect(first.addr).toMatch(/@/)
      const again = await hostHttps(d.host.host, 'POST', `/new?i=${encodeURIComponent(token)}`)
      expect(again.status, again.body).toBeGreaterThanOrEqual(400)
      expect(JSON.parse(again.body).reason).toBeTruthy()
      process.stderr.write(`invite used twice: ${again.status} ${JSON.parse(again.body).reason}\n`)
      await core.rpc.removeAccount(id)
    })
  }, 300_000)

  // ------------------------------------------------------ the same host: a domain and a self-signed certificate

  /**
   * `chatmail init DOMAIN --tls self-signed`, deployed over the IP-only server above (a redeploy,
   * not a new host). A self-signed certificate for a name: core's dcaccount: sign-up checks it
   * strictly and cannot take it, so the page runs the sign-up and hands core what chatmail relays
   * hand it for a self-signed server, a dclogin: link with ic=3 (accept the certificate) and no
   * servers (core finds them by autoconfig at https://DOMAIN/.well-known/, asked with that same
   * acceptance). The fence's resolver answers the domain with the host, as a DNS record would.
   */
  const byName = () => ({ servername: d.host.domain })

  test('init DOMAIN --tls self-signed, redeployed: a certificate for the name; the page runs the sign-up; /new hands out dclogin: with ic=3, which core parses as a login', async () => {
    // The IP-only server's accounts go with it.
    for (const id of await core.rpc.getAllAccountIds()) await core.rpc.removeAccount(id)
    const init = await d.cli(['init', d.host.domain, '--tls', 'self-signed', '--force'])
    expect(init.code, init.stderr).toBe(0)
    const r = await d.redeploy('--skip-dns-check')
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 3000)}`).toBe(0)
    // The certificate names the domain now (the IP address's one no longer named the server).
    const san = await guestShell(d.host, 'openssl x509 -in /etc/chatmail/tls/fullchain.pem -noout -ext subjectAltName')
    expect(san).toContain(`DNS:${d.host.domain}`)
    expect(san).not.toContain('IP Address:')
    // ... and is what IMAP, submission, HTTPS and TURN over TLS serve (the services restarted on it).
    for (const port of [993, 465, 443, 5349]) {
      const served = await new Promise<string | undefined>((ok, fail) => {
        const s = tlsConnect({ host: d.host.host, port, servername: d.host.domain, rejectUnauthorized: false })
        s.setTimeout(10_000, () => s.destroy(new Error(`TLS to port ${port} timed out`)))
        s.once('secureConnect', () => {
          ok(s.getPeerCertificate().subjectaltname)
          s.destroy()
        })
        s.once('error', fail)
      })
      expect({ port, served }).toEqual({ port, served: `DNS:${d.host.domain}` })
    }

    const page = await hostHttps(d.host.host, 'GET', '/', byName())
    expect(page.status).toBe(200)
    expect(dcaccountLink(page.body)).toBeUndefined()
    expect(page.body).toContain('<script src="/signup.js"></script>')
    // The script shows the link and its QR code, which /new sends (an image; the CSP allows data: images).
    expect((await hostHttps(d.host.host, 'GET', '/signup.js', byName())).body).toContain('body.dclogin_qr_svg')
    // A browser's request for the icon gets no content, not a 404 (Chromium asks for it on every visit).
    expect((await hostHttps(d.host.host, 'GET', '/favicon.ico', byName())).status).toBe(204)
    const created = await hostHttps(d.host.host, 'POST', '/new', byName())
    expect(created.status, created.body).toBe(200)
    const body = JSON.parse(created.body) as { email: string; password: string; dclogin_url: string }
    expect(body.email).toMatch(new RegExp(`^[a-z0-9]{9}@${d.host.domain.replaceAll('.', '\\.')}$`))
    expect(body.dclogin_url).toBe(`dclogin:${body.email}?p=${encodeURIComponent(body.password)}&v=1&ic=3`)
    const id = await core.rpc.addAccount()
    expect(await core.rpc.checkQr(id, body.dclogin_url)).toEqual({ kind: 'login', address: body.email })
    await core.rpc.removeAccount(id)
  }, 900_000)

  test('domain + self-signed: two accounts from the page’s dclogin: link; Secure-Join; an encrypted message each way; core’s TURN credentials allocate; realtime through the relay', async (ctx) => {
    const missing = await signupMissing(d.host.host, d.host.domain)
    if (missing) ctx.skip(missing)
    const a = await core.rpc.addAccount()
    const b = await core.rpc.addAccount()
    const ua = await signUp(core, a, d.host.host, '', d.host.domain)
    const ub = await signUp(core, b, d.host.host, '', d.host.domain)
    expect([ua.via, ub.via]).toEqual(['dclogin', 'dclogin'])
    for (const u of [ua, ub]) expect(u.addr.endsWith(`@${d.host.domain}`), u.addr).toBe(true)
    expect(ua.addr).not.toBe(ub.addr)
    process.stderr.write(
      `core configure from dclogin: (domain, self-signed): ${Math.round(ua.configureMs)} ms, ${Math.round(ub.configureMs)} ms\n`,
    )
    await core.rpc.startIo(a)
    await core.rpc.startIo(b)
    const x = await secureJoinAndExchange(core, a, b)
    process.stderr.write(
      `domain, self-signed: Secure-Join ${Math.round(x.secureJoinMs)} ms; message b→a ${Math.round(x.messageMs[0])} ms, a→b ${Math.round(x.messageMs[1])} ms (padlock shown)\n`,
    )
    // Core resolves the TURN host (the domain, in the fence) and lists it by address.
    const turnUrl = `turn:${d.host.host}:3478`
    const ice = await ourIceServer(core, a, turnUrl)
    const verify = await d.cli(['turn-cred', '--verify', `${d.host.domain}:3478:${ice.username}:${ice.credential}`])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    await expectTurnAllocates(ice, turnUrl)
    // Realtime: the relay is http://DOMAIN:3340 here (core cannot verify a self-signed relay).
    await realtimeThroughRelay(a, x.chatA, b, 'domain, self-signed')
  }, 300_000)
})
