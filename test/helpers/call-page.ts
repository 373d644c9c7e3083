/**
 * The WebRTC side of a Delta Chat call, as the app's calls page does it, in Debian's Chromium:
 * a plain page of our own (served to the browser by playwright itself, at an https: address that
 * never reaches the network) that builds its RTCPeerConnection from the ICE servers core handed
 * out, relay only, with Chromium's fake camera and microphone, and reports what getStats() says.
 * Core carries the SDP; this page only makes the offer or the answer and plays the media.
 *
 *   const browser = await launchInFence(fence, CALL_BROWSER_ARGS)
 *   const page = await openCallPage(browser.browser)
 *   await page.start(JSON.parse(await core.rpc.iceServers(id)), true)
 *   const offer = await page.offer()            // gathering complete: core sends no trickle ICE
 */
import type { Browser, Page } from 'playwright-core'

/** Fake camera and microphone, granted without a prompt. */
export const FAKE_MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']

/** Where the page is served (playwright answers it; the name is reserved and resolves nowhere). */
const ORIGIN = 'https://calls.invalid'

export interface Candidate {
  /** host, srflx, prflx or relay. */
  type: string
  address: string
  port: number
  /** For a local relay candidate: how the page reaches the TURN server (udp, tcp or tls). */
  relayProtocol?: string
  /** For a local relay candidate: the TURN URL it came from. */
  url?: string
}

export interface CallStats {
  connection: string
  /** The selected candidate pair. */
  pair?: { state: string; local?: Candidate; remote?: Candidate; bytesSent: number; bytesReceived: number }
  inbound: {
    kind: string
    bytesReceived: number
    packetsReceived: number
    packetsLost: number
    framesDecoded?: number
  }[]
  /** Date.now() when the first media arrived (a decoded video frame, or audio bytes), or 0. */
  firstMediaAt: number
}

export interface CallPage {
  page: Page
  /** Takes the camera and microphone and builds the connection (iceTransportPolicy: 'relay'). */
  start(iceServers: unknown, hasVideo: boolean): Promise<void>
  /** The offer once gathering is complete; rejects when no relay candidate came, with the ICE errors. */
  offer(gatherMs?: number): Promise<string>
  answer(offer: string, gatherMs?: number): Promise<string>
  accept(answer: string): Promise<void>
  stats(): Promise<CallStats>
  close(): Promise<void>
}

// The page's script. Plain JavaScript: it runs in Chromium, not in node.
const SCRIPT = `
const call = {
  pc: null, errors: [], urls: [], firstMediaAt: 0,
  async start(iceServers, hasVideo) {
    this.urls = iceServers.flatMap((s) => [].concat(s.urls))
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: hasVideo })
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' })
    pc.addEventListener('icecandidateerror', (e) => this.errors.push(e.url + ': ' + e.errorCode + ' ' + e.errorText))
    for (const t of stream.getTracks()) pc.addTrack(t, stream)
    this.pc = pc
    const watch = async () => {
      if (this.pc !== pc || pc.connectionState === 'closed') return
      const s = await this.stats()
      if (s.inbound.some((i) => (i.kind === 'video' ? i.framesDecoded > 0 : i.bytesReceived > 0))) this.firstMediaAt = Date.now()
      else setTimeout(watch, 20)
    }
    watch()
  },
  async local(gatherMs) {
    const pc = this.pc
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done()
      const t = setTimeout(done, gatherMs)
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); done() }
      })
    })
    const sdp = pc.localDescription.sdp
    if (!/ typ relay /.test(sdp)) {
      const state = pc.iceGatheringState === 'complete' ? 'complete' : 'still running after ' + gatherMs + ' ms'
      const why = this.errors.length ? this.errors.join('; ') : 'none reported'
      throw new Error('no relay candidate from ' + this.urls.join(', ') + ' (ICE gathering ' + state + '; TURN errors: ' + why + ')')
    }
    return sdp
  },
  async offer(gatherMs) {
    await this.pc.setLocalDescription(await this.pc.createOffer())
    return this.local(gatherMs)
  },
  async answer(sdp, gatherMs) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp })
    await this.pc.setLocalDescription(await this.pc.createAnswer())
    return this.local(gatherMs)
  },
  async accept(sdp) { await this.pc.setRemoteDescription({ type: 'answer', sdp }) },
  async stats() {
    const r = await this.pc.getStats()
    const all = [...r.values()]
    const transport = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId)
    const p = transport && r.get(transport.selectedCandidatePairId)
    const cand = (id) => {
      const c = id && r.get(id)
      return c && { type: c.candidateType, address: c.address, port: c.port, relayProtocol: c.relayProtocol, url: c.url }
    }
    return {
      connection: this.pc.connectionState,
      pair: p && { state: p.state, local: cand(p.localCandidateId), remote: cand(p.remoteCandidateId), bytesSent: p.bytesSent, bytesReceived: p.bytesReceived },
      inbound: all.filter((s) => s.type === 'inbound-rtp').map((s) => ({
        kind: s.kind, bytesReceived: s.bytesReceived, packetsReceived: s.packetsReceived,
        packetsLost: s.packetsLost, framesDecoded: s.framesDecoded,
      })),
      firstMediaAt: this.firstMediaAt,
    }
  },
  close() { this.pc?.close(); this.pc = null },
}
window.call = call
`

/** A new page (its own browser context) with the call script loaded at an https: origin. */
export async function openCallPage(browser: Browser): Promise<CallPage> {
  const context = await browser.newContext()
  await context.route(`${ORIGIN}/**`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><title>chatmail call test</title><script>${SCRIPT}</script>\n`,
    }),
  )
  const page = await context.newPage()
  await page.goto(`${ORIGIN}/`, { timeout: 30_000 })
  type W = { call: Record<string, (...a: unknown[]) => unknown> }
  const call = <R>(fn: string, ...args: unknown[]) =>
    page.evaluate(([f, a]) => (globalThis as unknown as W).call[f as string]!(...(a as unknown[])), [
      fn,
      args,
    ] as const) as Promise<R>
  return {
    page,
    start: (ice, hasVideo) => call('start', ice, hasVideo),
    offer: (gatherMs = 20_000) => call('offer', gatherMs),
    answer: (offer, gatherMs = 20_000) => call('answer', offer, gatherMs),
    accept: (answer) => call('accept', answer),
    stats: () => call('stats'),
    close: async () => {
      await call('close').catch(() => {})
      await context.close().catch(() => {})
    },
  }
}
