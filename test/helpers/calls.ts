/**
 * A real Delta Chat call through the server's TURN (issue 25), for one Debian release: a deployed
 * test host; two REAL cores (one account each, on our server, Secure-Join done) and Debian's
 * Chromium with two pages, all in one fence that reaches the test host and nothing else. Each page
 * builds its RTCPeerConnection from its own core's iceServers() (relay only, fake camera and
 * microphone); core carries the offer and the answer through the server as chat messages.
 * test/e2e/calls-12.test.ts and calls-13.test.ts run it, one file per release so that the two can
 * run side by side.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { browserSkipReason, type FencedBrowser, launchInFence } from './browser.js'
import { type CallPage, type CallStats, FAKE_MEDIA_ARGS, openCallPage } from './call-page.js'
import {
  type Core,
  coreSkipReason,
  createFence,
  type Fence,
  iceServers,
  ourIceServer,
  secureJoinAndExchange,
  signUp,
  startCore,
  waitForEvent,
} from './deltachat.js'
import { type DeployedHost, startDeployedHost } from './deployed-host.js'
import { withoutUdp } from './realtime.js'
import { DEBIAN_SUITES, type DebianSuite, e2eSuites, guestShell } from './testhost.js'

/** One side of the call: its core, its account, its chat with the other side, its page. */
interface Side {
  core: Core
  id: number
  chat: number
  page?: CallPage
}

/** How the pages reach the TURN server: core's own URLs (UDP), or rewritten to TCP or TLS. */
type Transport = 'udp' | 'tcp' | 'tls'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Core's iceServers() with its turn: URLs rewritten for the transport (core itself lists UDP only). */
function forTransport(servers: { urls: string[] }[], t: Transport, tlsPort: number): unknown {
  if (t === 'udp') return servers
  const rewrite = (u: string) => {
    const m = /^turn:([^:?]+):(\d+)$/.exec(u)
    if (!m) return u
    return t === 'tcp' ? `${u}?transport=tcp` : `turns:${m[1]}:${tlsPort}?transport=tcp`
  }
  return servers.map((s) => ({ ...s, urls: s.urls.map(rewrite) }))
}

/** Bytes a session must have carried each way to count as the call's (an allocation without media: a few hundred). */
const MEDIA_BYTES = 50_000

const inbound = (s: CallStats, kind: string) => s.inbound.find((i) => i.kind === kind)?.bytesReceived ?? 0

/**
 * `externalIp`: also the call on the same host made a server behind 1:1 NAT (issue 25 item 3).
 */
export function describeCalls(
  suite: DebianSuite,
  where: { index: number; fenceIndex: number; externalIp?: boolean },
): void {
  const release = DEBIAN_SUITES[suite]
  const skip =
    coreSkipReason() ?? browserSkipReason() ?? (e2eSuites().includes(suite) ? undefined : 'CHATMAIL_E2E_DEBIAN')
  const title = `a real Delta Chat call through the server's TURN: Debian ${release}`
  describe.skipIf(skip)(`${title}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let d: DeployedHost
    let fence: Fence
    let browser: FencedBrowser
    const a = {} as Side
    const b = {} as Side
    const tlsPort = 5349

    beforeAll(async () => {
      d = await startDeployedHost({
        name: `th-call-${release}`,
        index: where.index,
        suite,
        deployArgs: ['--no-doctor'],
      })
      fence = await createFence({
        name: `call${release}`,
        index: where.fenceIndex,
        hosts: [{ ip: d.host.host, names: [d.host.domain] }],
      })
      a.core = await startCore(fence)
      b.core = await startCore(fence)
      for (const s of [a, b]) {
        s.id = await s.core.rpc.addAccount()
        await signUp(s.core, s.id, d.host.host)
        await s.core.rpc.startIo(s.id)
      }
      const x = await secureJoinAndExchange(a.core, a.id, b.id, b.core)
      a.chat = x.chatA
      b.chat = x.chatB
      // turns: with the server's self-signed certificate: Chromium trusts exactly its key.
      const spki = await guestShell(
        d.host,
        'openssl x509 -in /etc/chatmail/tls/fullchain.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64',
      )
      // coturn logs sessions only with --verbose, which the deploy leaves off (it would log every
      // call's addresses): here, on the test host only, a drop-in turns it on.
      const exec = (await guestShell(d.host, 'systemctl cat coturn | grep "^ExecStart=/" | tail -1')).trim()
      expect(exec).toMatch(/^ExecStart=\/usr\/bin\/turnserver /)
      await guestShell(
        d.host,
        `mkdir -p /etc/systemd/system/coturn.service.d && printf '[Service]\\nExecStart=\\n%s --verbose\\n' '${exec}' >/etc/systemd/system/coturn.service.d/zz-call-test-verbose.conf && systemctl daemon-reload && systemctl restart coturn`,
      )
      browser = await launchInFence(fence, [...FAKE_MEDIA_ARGS, `--ignore-certificate-errors-spki-list=${spki.trim()}`])
    }, 1_200_000)

    afterAll(async () => {
      await browser?.close()
      for (const s of [a, b]) await s.core?.close().catch(() => {})
      await fence?.close().catch(() => {})
      await d?.stop()
    }, 120_000)

    /** coturn's journal lines since `since` (a journalctl --since value). */
    const coturnLog = (since: string) =>
      guestShell(d.host, `journalctl -u coturn --no-pager -o cat --since '${since}'`).then((s) => s.trim().split('\n'))

    /**
     * A video call a→b: a's page offers, a's core places it; b's core gets it, b's page answers,
     * b's core accepts; a's core hands the answer to a's page. Media must flow both ways,
     * relay/relay on the server's address, then a's core ends it and both cores see it ended.
     */
    const call = async (transport: Transport, relayedAt = d.host.host) => {
      const since = (await guestShell(d.host, "date '+%Y-%m-%d %H:%M:%S'")).trim()
      const turnUrl = `turn:${d.host.host}:3478`
      for (const s of [a, b]) await ourIceServer(s.core, s.id, turnUrl)
      a.page = await openCallPage(browser.browser)
      b.page = await openCallPage(browser.browser)
      try {
        const iceA = await iceServers(a.core, a.id)
        await a.page.start(forTransport(iceA, transport, tlsPort), true)
        const offer = await a.page.offer()
        const incoming = waitForEvent(b.core, b.id, 'IncomingCall', () => true, 60_000)
        const placedAt = Date.now()
        const msgA = await a.core.rpc.placeOutgoingCall(a.id, a.chat, offer, true)
        const inB = await incoming
        expect(inB.place_call_info).toBe(offer)
        expect(inB.has_video).toBe(true)
        const infoB = await b.core.rpc.callInfo(b.id, inB.msg_id)
        expect(infoB.sdpOffer).toBe(offer)
        expect(infoB.state.kind).toBe('Alerting')

        const iceB = await iceServers(b.core, b.id)
        await b.page.start(forTransport(iceB, transport, tlsPort), true)
        const answer = await b.page.answer(inB.place_call_info)
        const accepted = waitForEvent(a.core, a.id, 'OutgoingCallAccepted', (e) => e.msg_id === msgA, 60_000)
        await b.core.rpc.acceptIncomingCall(b.id, inB.msg_id, answer)
        const acc = await accepted
        expect(acc.accept_call_info).toBe(answer)
        await a.page.accept(acc.accept_call_info)

        // The first media on each page, then bytes growing for several seconds.
        let sa = await a.page.stats()
        let sb = await b.page.stats()
        for (let i = 0; i < 300 && !(sa.firstMediaAt && sb.firstMediaAt); i++) {
          await sleep(100)
          ;[sa, sb] = [await a.page.stats(), await b.page.stats()]
        }
        expect(sa.firstMediaAt, `no media on a's page: ${JSON.stringify(sa)}`).toBeGreaterThan(0)
        expect(sb.firstMediaAt, `no media on b's page: ${JSON.stringify(sb)}`).toBeGreaterThan(0)
        process.stderr.write(
          `Debian ${release}, ${transport}: place_outgoing_call → first media on a's page ${sa.firstMediaAt - placedAt} ms, on b's page ${sb.firstMediaAt - placedAt} ms\n`,
        )
        const relayProtocol = { udp: 'udp', tcp: 'tcp', tls: 'tls' }[transport]
        for (const [who, s] of [
          ['a', sa],
          ['b', sb],
        ] as const) {
          expect(s.connection, `${who}'s connection`).toBe('connected')
          expect(
            s.pair?.bytesReceived,
            `${who}'s selected pair carries data: ${JSON.stringify(s.pair)}`,
          ).toBeGreaterThan(0)
          // Relay on both ends, both on the server's address: each side's relayed address, and the
          // other's, which it reaches through its own allocation (relay to relay, inside coturn).
          expect(s.pair?.local).toMatchObject({ type: 'relay', address: relayedAt, relayProtocol })
          expect(s.pair?.remote).toMatchObject({ type: 'relay', address: relayedAt })
        }
        for (let i = 0; i < 3; i++) {
          await sleep(2_000)
          const [na, nb] = [await a.page.stats(), await b.page.stats()]
          for (const kind of ['audio', 'video']) {
            expect(inbound(na, kind), `${kind} bytes on a's page grow`).toBeGreaterThan(inbound(sa, kind))
            expect(inbound(nb, kind), `${kind} bytes on b's page grow`).toBeGreaterThan(inbound(sb, kind))
          }
          ;[sa, sb] = [na, nb]
        }
        process.stderr.write(
          `Debian ${release}, ${transport}: received audio/video bytes a ${inbound(sa, 'audio')}/${inbound(sa, 'video')}, b ${inbound(sb, 'audio')}/${inbound(sb, 'video')}; a's pair ${JSON.stringify(sa.pair?.local)} → ${JSON.stringify(sa.pair?.remote)}\n`,
        )
        expect((await a.core.rpc.callInfo(a.id, msgA)).state.kind).toBe('Active')
        expect((await b.core.rpc.callInfo(b.id, inB.msg_id)).state.kind).toBe('Active')

        // a hangs up through core; both cores see the call ended.
        const endedA = waitForEvent(a.core, a.id, 'CallEnded', (e) => e.msg_id === msgA, 60_000)
        const endedB = waitForEvent(b.core, b.id, 'CallEnded', (e) => e.msg_id === inB.msg_id, 60_000)
        await a.core.rpc.endCall(a.id, msgA)
        await Promise.all([endedA, endedB])
        expect((await a.core.rpc.callInfo(a.id, msgA)).state.kind).toBe('Completed')
        expect((await b.core.rpc.callInfo(b.id, inB.msg_id)).state.kind).toBe('Completed')
      } finally {
        // The pages close their connections (core only sends the end message): coturn frees both.
        await a.page.close()
        await b.page.close()
      }
      // coturn's journal: the two sessions of the call, allocated with the cores' credentials.
      const users = new Set(
        [...(await iceServers(a.core, a.id)), ...(await iceServers(b.core, b.id))].map((s) => s.username),
      )
      // Sessions opened since the call began, and what coturn counted on them: `usage:` lines
      // (rb/sb: bytes received from and sent to the page since the session's last such line;
      // the last comes when the session closes), summed per session.
      let log: string[] = []
      const used = new Map<string, { rb: number; sb: number }>()
      const media = () => [...used].filter(([, u]) => u.rb > MEDIA_BYTES && u.sb > MEDIA_BYTES)
      for (let i = 0; i < 30 && media().length < 2; i++) {
        if (i > 0) await sleep(1_000)
        log = await coturnLog(since)
        const opened = new Set(
          log.flatMap((l) => {
            const m = /session (\d+): new, realm=<[^>]*>, username=<([^>]*)>/.exec(l)
            return m && users.has(m[2]!) ? [m[1]!] : []
          }),
        )
        used.clear()
        // coturn logs each line twice (syslog and its own log both reach the journal): once each.
        for (const l of new Set(log)) {
          const m = /session (\d+): usage: .*, rb=(\d+), sp=\d+, sb=(\d+)/.exec(l)
          if (!m || !opened.has(m[1]!)) continue
          const u = used.get(m[1]!) ?? { rb: 0, sb: 0 }
          used.set(m[1]!, { rb: u.rb + Number(m[2]), sb: u.sb + Number(m[3]) })
        }
      }
      process.stderr.write(
        `Debian ${release}, ${transport}: coturn's sessions of the call (bytes from/to the page): ${JSON.stringify(Object.fromEntries(used))}\n`,
      )
      expect(
        media().length,
        `two sessions opened with the cores' credentials during the call, with media both ways, in coturn's journal:\n${log.join('\n')}`,
      ).toBeGreaterThanOrEqual(2)
    }

    test('a video call over TURN/UDP (what core hands out): media both ways, relay to relay on the server, ended through core', async () => {
      await call('udp')
    }, 240_000)

    test('the same call over TURN/TCP (turn:…?transport=tcp), UDP blocked in the fence', async () => {
      await withoutUdp(fence, () => call('tcp'))
    }, 240_000)

    test('the same call over TURN/TLS (turns:…:5349), UDP blocked in the fence', async () => {
      await withoutUdp(fence, () => call('tls'))
    }, 240_000)

    // A host behind 1:1 NAT (AWS, GCP, many home labs): turn.external_ip = "PUBLIC/PRIVATE";
    // coturn hands out PUBLIC as relayed address, and one allocation reaches the other through
    // the NAT's hairpin. The NAT is played on the host itself: what is sent to PUBLIC goes to
    // PRIVATE (DNAT) and comes from PUBLIC (SNAT), as a NAT that hairpins does it. PUBLIC is a
    // documentation address (TEST-NET-2), in a denied range: only allowed-peer-ip lets it through.
    test.skipIf(!where.externalIp)(
      'with turn.external_ip = "PUBLIC/PRIVATE" (a host behind 1:1 NAT): the call is relayed at the public address',
      async () => {
        const pub = `198.51.100.${where.index}`
        const priv = d.host.host
        await guestShell(
          d.host,
          [
            'nft add table ip chatmail_call_test_nat',
            "nft add chain ip chatmail_call_test_nat out '{ type nat hook output priority -100; }'",
            `nft add rule ip chatmail_call_test_nat out ip daddr ${pub} ip protocol udp dnat to ${priv}`,
            "nft add chain ip chatmail_call_test_nat post '{ type nat hook postrouting priority 100; }'",
            `nft add rule ip chatmail_call_test_nat post ct original ip daddr ${pub} ip protocol udp snat to ${pub}`,
          ].join(' && '),
        )
        const path = join(d.dir, 'chatmail.toml')
        const toml = readFileSync(path, 'utf8')
        const line = /^#? ?external_ip = .*$/m
        expect(toml).toMatch(line)
        writeFileSync(path, toml.replace(line, `external_ip = "${pub}/${priv}"`))
        const r = await d.redeploy()
        expect(r.code, r.stderr).toBe(0)
        expect(await guestShell(d.host, 'grep -E "^(external-ip|allowed-peer-ip)=" /etc/turnserver.conf')).toContain(
          `external-ip=${pub}/${priv}\n`,
        )
        await call('udp', pub)
      },
      600_000,
    )

    test('with coturn down, the call cannot start and the page says why (no relay candidate, the TURN error)', async () => {
      await guestShell(d.host, 'systemctl stop coturn')
      const page = await openCallPage(browser.browser)
      try {
        await page.start(await iceServers(a.core, a.id), true)
        const err = await page.offer(15_000).then(
          () => new Error('an offer was made without a TURN server'),
          (e: unknown) => e as Error,
        )
        process.stderr.write(`Debian ${release}, TURN down: ${err.message}\n`)
        expect(err.message).toContain(`no relay candidate from turn:${d.host.host}:3478 (ICE gathering`)
      } finally {
        await page.close()
        await guestShell(d.host, 'systemctl start coturn')
      }
    }, 120_000)
  })
}
