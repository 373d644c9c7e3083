/**
 * The relay group: does the iroh relay that Delta Chat is told about (metadata, or --relay-url)
 * answer like iroh-relay v0.35, upgrade the way iroh 0.35 clients ask, and forward packets?
 */

import { DEFAULT_PORTS } from '../../protocols/ports.js'
import {
  type HandshakeResult,
  probeRelayVersion,
  RelayError,
  type RelayProbeOptions,
  relayForward,
  relayGenerate204,
  relayHandshake,
  relayPing,
  relayUpgrade,
  type TlsInfo,
  type UpgradeResult,
  type VersionProbe,
} from '../../relay/client.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'

const NO_URL = 'no iroh relay URL: the metadata has none and --relay-url was not given'

export const V1_HINT =
  'Delta Chat uses iroh 0.35; a 1.x relay cannot serve it; pin iroh-relay v0.35.0 (chatmail deploy installs that release)'

const nginxHint = (url: URL) =>
  `make ${url.origin}/relay reach iroh-relay: in nginx, \`location /relay { proxy_pass http://127.0.0.1:${DEFAULT_PORTS.irohRelay}; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }\` (and the same proxy for /ping and /generate_204)`

function relayUrl(ctx: CheckContext): URL | undefined {
  if (ctx.findings.relayUrl) return ctx.findings.relayUrl
  if (!ctx.options.relayUrl) return undefined
  try {
    return new URL(ctx.options.relayUrl)
  } catch {
    return undefined
  }
}

const probeOptions = (ctx: CheckContext): RelayProbeOptions => ({
  // A little under the check's own timeout, so the probe's own timeout (which names the stage that
  // got no answer: the Pong, the forwarded packet) wins over the runner's generic one.
  timeoutMs: Math.max(ctx.timeoutMs - 250, Math.ceil(ctx.timeoutMs * 0.9)),
  signal: ctx.signal,
  ...(ctx.options.ca ? { ca: ctx.options.ca } : {}),
  insecure: ctx.options.insecure,
})

const endpoint = (url: URL) =>
  `${url.hostname}:${url.port || (url.protocol === 'https:' ? DEFAULT_PORTS.https : DEFAULT_PORTS.http)}`

/** What to change, for a probe that failed before or outside HTTP. */
export function hintForError(err: RelayError, url: URL): string {
  switch (err.kind) {
    case 'timeout':
      if (err.stage?.includes('Pong')) {
        return 'the relay took the connection but never answered a Ping: make /relay reach iroh-relay v0.35.0 itself (not a proxy that buffers or another service) and restart it'
      }
      if (err.stage?.includes('forward')) {
        return 'the relay accepted both clients but did not forward a packet between them: restart iroh-relay v0.35.0 and check its [limits] and access settings'
      }
      return `nothing answered at ${endpoint(url)} in time: check that iroh-relay runs (systemctl status iroh-relay), that nginx proxies to it, and that the firewall lets port ${url.port || DEFAULT_PORTS.https} in`
    case 'refused':
      return `nothing accepts connections at ${endpoint(url)}: start nginx and iroh-relay (systemctl status nginx iroh-relay) and open the port, or fix iroh.relay_url`
    case 'tls':
      return `give nginx a valid certificate for ${url.hostname} (chatmail deploy gets one via ACME), or pass --ca FILE when it is signed by a private CA`
    case 'http':
      if (err.status === 400) {
        return `the relay rejected Upgrade: iroh derp http (400): a proxy drops the Upgrade header, or the relay is 1.x (see relay.upgrade); ${nginxHint(url)}`
      }
      return nginxHint(url)
    case 'auth':
      return 'the relay turns clients away: set access = "everyone" in iroh-relay.toml and restart iroh-relay'
    default:
      return `${url.origin}/relay does not speak the iroh-relay 0.35 protocol: make it reach iroh-relay v0.35.0 (not another service, not a 1.x relay)`
  }
}

function failFrom(err: unknown, url: URL, what: string): CheckOutcome {
  if (err instanceof RelayError) return fail(`${what}: ${err.message}`, hintForError(err, url))
  return fail(`${what}: ${(err as Error)?.message ?? String(err)}`, hintForError(new RelayError('protocol', ''), url))
}

/** ok, or warn when the certificate was accepted only because of --insecure. */
function okUnlessInsecure(detail: string, tls: TlsInfo | undefined, url: URL): CheckOutcome {
  if (tls && !tls.authorized) {
    return warn(
      `${detail}; but the certificate of ${url.hostname} is not valid (${tls.error ?? 'unverified'}), accepted because of --insecure`,
      `give nginx a valid certificate for ${url.hostname}: Delta Chat's iroh verifies it and will not use the relay`,
    )
  }
  return ok(detail)
}

type Probe = (url: URL, ctx: CheckContext) => Promise<CheckOutcome>

/** Skip without a URL, otherwise run the probe with failures turned into outcomes. */
const withRelayUrl =
  (what: string, probe: Probe) =>
  async (ctx: CheckContext): Promise<CheckOutcome> => {
    const url = relayUrl(ctx)
    if (!url) return skip(NO_URL)
    try {
      return await probe(url, ctx)
    } catch (err) {
      return failFrom(err, url, what)
    }
  }

const pingCheck: Probe = async (url, ctx) => {
  const r = await relayPing(url, probeOptions(ctx))
  if (r.status !== 200) {
    return fail(`GET ${url.origin}/ping answered ${r.status} ${r.reason}, expected 200`, nginxHint(url))
  }
  return okUnlessInsecure(`GET ${url.origin}/ping → 200`, r.tls, url)
}

const generate204Check: Probe = async (url, ctx) => {
  const r = await relayGenerate204(url, probeOptions(ctx))
  if (!r.ok) {
    // Relaying works without it; iroh's net_report uses it only for captive-portal detection.
    return warn(
      `GET ${url.origin}/generate_204: ${r.reason}`,
      `proxy /generate_204 to iroh-relay (http://127.0.0.1:${DEFAULT_PORTS.irohRelay}) in nginx, passing the X-Tailscale-Challenge header`,
    )
  }
  return okUnlessInsecure('GET /generate_204 → 204 with the challenge echoed', r.tls, url)
}

function describeStatus(r: PromiseSettledResult<UpgradeResult>): string {
  if (r.status === 'rejected') return (r.reason as Error)?.message ?? String(r.reason)
  return `${r.value.status} ${r.value.reason}`.trim()
}

const upgradeCheck: Probe = async (url, ctx) => {
  const o = probeOptions(ctx)
  const [derp, ws, version] = await Promise.allSettled([
    relayUpgrade(url, { ...o, variant: 'derp' }),
    relayUpgrade(url, { ...o, variant: 'websocket' }),
    probeRelayVersion(url, o),
  ])
  for (const r of [derp, ws]) if (r.status === 'fulfilled') r.value.connection?.close()
  const v: VersionProbe = version.status === 'fulfilled' ? version.value : { version: 'unknown', evidence: 'no answer' }
  if (v.version === '1.x') return fail(`${url.origin} runs a 1.x iroh relay: ${v.evidence}`, V1_HINT)
  if (derp.status === 'rejected') return failFrom(derp.reason, url, 'GET /relay with Upgrade: iroh derp http')
  if (derp.value.status !== 101) {
    return fail(
      `GET ${url.origin}/relay with Upgrade: iroh derp http (what Delta Chat sends) answered ${describeStatus(derp)}, expected 101`,
      nginxHint(url),
    )
  }
  if (ws.status === 'rejected' || ws.value.status !== 101) {
    return warn(
      `the iroh derp upgrade works (101), the websocket upgrade answered ${describeStatus(ws)}`,
      `Delta Chat does not need it, but browsers and other iroh clients do: ${nginxHint(url)}`,
    )
  }
  const which = v.version === '0.35' ? `iroh-relay 0.35 (${v.evidence})` : `relay version unknown (${v.evidence})`
  return okUnlessInsecure(`101 to Upgrade: iroh derp http and to websocket; ${which}`, derp.value.tls, url)
}

const shortId = (h: HandshakeResult) => `${h.nodeId.slice(0, 10)}…`

const handshakeCheck: Probe = async (url, ctx) => {
  const h = await relayHandshake(url, { ...probeOptions(ctx), variant: 'derp' })
  return okUnlessInsecure(`signed ClientInfo accepted, Ping → Pong in ${h.rttMs} ms (node ${shortId(h)})`, h.tls, url)
}

const forwardCheck: Probe = async (url, ctx) => {
  const r = await relayForward(url, { ...probeOptions(ctx), variant: 'derp' })
  return ok(
    `${r.packets} packets (${r.bytes} bytes) forwarded between two clients with their own keys, source keys intact`,
  )
}

const relayCheck = (id: string, title: string, probe: Probe, what: string): CheckDef => ({
  id,
  group: 'relay',
  title,
  after: ['metadata.irohrelay'],
  run: withRelayUrl(what, probe),
})

export const relayChecks: CheckDef[] = [
  relayCheck('relay.ping', 'iroh relay answers /ping', pingCheck, 'GET /ping'),
  relayCheck('relay.generate204', 'iroh relay answers /generate_204', generate204Check, 'GET /generate_204'),
  relayCheck('relay.upgrade', 'iroh relay upgrades /relay (0.35 protocol)', upgradeCheck, 'upgrade of /relay'),
  relayCheck('relay.handshake', 'iroh relay accepts a client (ClientInfo, Ping/Pong)', handshakeCheck, 'handshake'),
  relayCheck('relay.forward', 'iroh relay forwards packets between clients', forwardCheck, 'forwarding'),
]
