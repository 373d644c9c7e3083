/**
 * The relay's plain HTTP endpoints (/ping, /generate_204) and which protocol version it speaks.
 */
import { randomBytes } from 'node:crypto'
import type { PeerTls } from '../lib/tls.js'
import { isV1ServerChallenge, V1_SUBPROTOCOL } from '../protocols/iroh-relay.js'
import {
  connect,
  type RelayConnection,
  type RelayProbeOptions,
  readResponseHead,
  relayEndpoint,
  withDeadline,
} from './connection.js'
import { upgradeWithin } from './session.js'

export interface HttpProbeResult {
  status: number
  reason: string
  headers: Record<string, string>
  tls?: PeerTls
}

async function httpGet(
  url: URL | string,
  path: string,
  extra: Record<string, string>,
  opts: RelayProbeOptions,
  what: string,
): Promise<HttpProbeResult> {
  return withDeadline(opts, what, async (d) => {
    const ep = relayEndpoint(url)
    const { socket, tls } = await connect(ep, opts, d)
    d.stage = `waiting for the answer to GET ${path}`
    const lines = [`GET ${path} HTTP/1.1`, `Host: ${ep.hostHeader}`, 'User-Agent: chatmail-doctor', 'Connection: close']
    for (const [k, v] of Object.entries(extra)) lines.push(`${k}: ${v}`)
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    const { head } = await readResponseHead(socket)
    return { status: head.status, reason: head.reason, headers: head.headers, ...(tls ? { tls } : {}) }
  })
}

/** GET /ping: a 0.35 relay answers 200 with an empty body. */
export function relayPing(url: URL | string, opts: RelayProbeOptions): Promise<HttpProbeResult> {
  return httpGet(url, '/ping', {}, opts, 'GET /ping')
}

export interface Generate204Result extends HttpProbeResult {
  challenge: string
  /** The X-Tailscale-Response header, if any. */
  response?: string
  /** Status 204 and the response echoes `response <challenge>`. */
  ok: boolean
  reason: string
}

/** GET /generate_204 with an X-Tailscale-Challenge: expects 204 and `X-Tailscale-Response: response <c>`. */
export async function relayGenerate204(url: URL | string, opts: RelayProbeOptions): Promise<Generate204Result> {
  const challenge = `chatmail-${randomBytes(9)
    .toString('base64url')
    .replace(/[^A-Za-z0-9]/g, 'x')}`
  const r = await httpGet(url, '/generate_204', { 'X-Tailscale-Challenge': challenge }, opts, 'GET /generate_204')
  const response = r.headers['x-tailscale-response']
  const expected = `response ${challenge}`
  let reason = 'ok'
  if (r.status !== 204) reason = `status ${r.status} ${r.reason}, expected 204`.trim()
  else if (response === undefined) reason = 'no X-Tailscale-Response header'
  else if (response !== expected) reason = `X-Tailscale-Response is "${response}", expected "${expected}"`
  return { ...r, challenge, ...(response !== undefined ? { response } : {}), ok: reason === 'ok', reason }
}

export type RelayVersion = '0.35' | '1.x' | 'unknown'

export interface VersionProbe {
  version: RelayVersion
  /** What the answer was based on, one sentence. */
  evidence: string
}

/**
 * Which relay protocol the server speaks. A websocket upgrade that offers `iroh-relay-v1`:
 * a 1.x relay selects it (and sends a ServerChallenge), a 0.35 relay selects no subprotocol.
 * When that upgrade gets no 101, a 101 to `Upgrade: iroh derp http` still identifies 0.35.
 */
export function probeRelayVersion(url: URL | string, opts: RelayProbeOptions): Promise<VersionProbe> {
  return withDeadline(opts, 'relay version probe', async (d) => {
    const ws = await upgradeWithin(url, { ...opts, variant: 'websocket', subprotocols: [V1_SUBPROTOCOL] }, d)
    if (ws.connection) {
      const conn = ws.connection
      try {
        if (ws.subprotocol === V1_SUBPROTOCOL) {
          d.stage = 'waiting for a 1.x ServerChallenge'
          const first = await firstMessageWithin(conn, Math.min(2000, d.remaining() / 2))
          const challenge = first && isV1ServerChallenge(first) ? ' and sent a ServerChallenge' : ''
          return {
            version: '1.x',
            evidence: `the websocket upgrade selected the subprotocol ${V1_SUBPROTOCOL}${challenge}`,
          }
        }
        if (ws.subprotocol)
          return { version: 'unknown', evidence: `the relay selected the subprotocol ${ws.subprotocol}` }
        return {
          version: '0.35',
          evidence: `a websocket upgrade offering ${V1_SUBPROTOCOL} got a 101 without subprotocol`,
        }
      } finally {
        conn.close()
      }
    }
    d.stage = 'trying the derp upgrade'
    const derp = await upgradeWithin(url, { ...opts, variant: 'derp' }, d)
    if (derp.connection) {
      derp.connection.close()
      return { version: '0.35', evidence: `Upgrade: iroh derp http got a 101 (websocket upgrade: ${ws.status})` }
    }
    return {
      version: 'unknown',
      evidence: `no 101 to either upgrade (websocket: ${ws.status}, iroh derp http: ${derp.status})`,
    }
  })
}

/** '0.35' | '1.x' | 'unknown'; see probeRelayVersion. */
export async function detectRelayVersion(url: URL | string, opts: RelayProbeOptions): Promise<RelayVersion> {
  return (await probeRelayVersion(url, opts)).version
}

/** The first websocket message within `ms`, or undefined. */
function firstMessageWithin(conn: RelayConnection, ms: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(conn.rawMessages[0]), ms)
    conn.next().then(
      () => {
        clearTimeout(timer)
        resolve(conn.rawMessages[0])
      },
      () => {
        clearTimeout(timer)
        resolve(conn.rawMessages[0])
      },
    )
  })
}
