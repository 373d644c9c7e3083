/**
 * Relay sessions: the HTTP upgrade of /relay (derp or websocket framing), the signed ClientInfo
 * with a Ping/Pong, and two clients forwarding a packet each way.
 */
import { randomBytes } from 'node:crypto'
import type { Deadline } from '../lib/deadline.js'
import type { PeerTls } from '../lib/tls.js'
import {
  buildClientInfo,
  buildUpgradeRequest,
  checkUpgradeResponse,
  encodeSendPacket,
  FrameType,
  generateKeyPair,
  keyToHex,
  parseRecvPacket,
  type RelayKeyPair,
  selectedSubprotocol,
  type UpgradeVariant,
} from '../protocols/iroh-relay.js'
import {
  connect,
  expectFrame,
  RelayConnection,
  RelayError,
  type RelayProbeOptions,
  readResponseHead,
  relayEndpoint,
  withDeadline,
} from './connection.js'

export interface UpgradeOptions extends RelayProbeOptions {
  variant: UpgradeVariant
  /** websocket only: subprotocols to offer (a 0.35 client offers none). */
  subprotocols?: string[]
  path?: string
}

export interface UpgradeResult {
  variant: UpgradeVariant
  status: number
  reason: string
  headers: Record<string, string>
  /** The websocket subprotocol the server selected, if any. */
  subprotocol?: string
  tls?: PeerTls
  /** When the status is 101: the live connection; the caller must close it. */
  connection?: RelayConnection
}

export async function upgradeWithin(url: URL | string, o: UpgradeOptions, d: Deadline): Promise<UpgradeResult> {
  const ep = relayEndpoint(url)
  const { socket, tls } = await connect(ep, o, d)
  d.stage = `waiting for the answer to the ${o.variant} upgrade`
  const wsKey = o.variant === 'websocket' ? randomBytes(16).toString('base64') : undefined
  socket.write(
    buildUpgradeRequest({
      variant: o.variant,
      host: ep.hostHeader,
      ...(o.path ? { path: o.path } : {}),
      ...(wsKey ? { wsKey } : {}),
      ...(o.subprotocols ? { subprotocols: o.subprotocols } : {}),
    }),
  )
  const { head, rest } = await readResponseHead(socket)
  const subprotocol = selectedSubprotocol(head)
  const base = {
    variant: o.variant,
    status: head.status,
    reason: head.reason,
    headers: head.headers,
    ...(subprotocol ? { subprotocol } : {}),
    ...(tls ? { tls } : {}),
  }
  if (head.status !== 101) {
    socket.destroy()
    return base
  }
  const check = checkUpgradeResponse(head, o.variant, wsKey)
  if (!check.ok) throw new RelayError('protocol', `the 101 answer to the websocket upgrade is invalid: ${check.reason}`)
  return { ...base, connection: new RelayConnection(socket, o.variant, rest) }
}

/** `GET /relay` with `Upgrade: iroh derp http` (derp) or a websocket upgrade; returns the answer. */
export function relayUpgrade(url: URL | string, o: UpgradeOptions): Promise<UpgradeResult> {
  return withDeadline(o, `${o.variant} upgrade`, async (d) => {
    const r = await upgradeWithin(url, o, d)
    if (r.connection) d.release(r.connection.socket)
    return r
  })
}

async function openRelay(url: URL | string, o: UpgradeOptions, d: Deadline): Promise<RelayConnection> {
  const r = await upgradeWithin(url, o, d)
  if (!r.connection) {
    throw new RelayError(
      'http',
      `GET /relay (${o.variant} upgrade) answered ${r.status} ${r.reason}, expected 101`,
      undefined,
      r.status,
    )
  }
  return r.connection
}

/** Send a signed ClientInfo, then a Ping with 8 random bytes; resolves when the matching Pong arrives. */
async function login(conn: RelayConnection, keys: RelayKeyPair, d: Deadline, who: string): Promise<void> {
  conn.send(FrameType.ClientInfo, buildClientInfo(keys))
  const data = randomBytes(8)
  conn.send(FrameType.Ping, data)
  d.stage = `waiting for the Pong to ${who}'s Ping`
  await expectFrame(conn, (f) => (f.type === FrameType.Pong && f.payload.equals(data) ? true : undefined))
}

export interface HandshakeOptions extends RelayProbeOptions {
  variant?: UpgradeVariant
  keys?: RelayKeyPair
}

export interface HandshakeResult {
  variant: UpgradeVariant
  /** Our node id (hex). */
  nodeId: string
  /** Time from sending the Ping to its Pong. */
  rttMs: number
  tls?: PeerTls
}

/** Upgrade, log in with a fresh ed25519 key, and prove the relay answers a Ping with the same bytes. */
export function relayHandshake(url: URL | string, o: HandshakeOptions): Promise<HandshakeResult> {
  const variant = o.variant ?? 'derp'
  return withDeadline(o, `relay handshake (${variant})`, async (d) => {
    const keys = o.keys ?? generateKeyPair()
    const r = await upgradeWithin(url, { ...o, variant }, d)
    if (!r.connection) {
      throw new RelayError('http', `GET /relay answered ${r.status} ${r.reason}, expected 101`, undefined, r.status)
    }
    const conn = r.connection
    const started = performance.now()
    try {
      await login(conn, keys, d, 'the probe')
    } finally {
      conn.close()
    }
    const rttMs = Math.round((performance.now() - started) * 10) / 10
    return { variant, nodeId: keyToHex(keys.publicKey), rttMs, ...(r.tls ? { tls: r.tls } : {}) }
  })
}

export interface ForwardOptions extends RelayProbeOptions {
  variant?: UpgradeVariant
  /** Bytes per packet (default 1200, a QUIC Initial). */
  size?: number
}

export interface ForwardResult {
  variant: UpgradeVariant
  a: string
  b: string
  /** Packets that arrived intact with the right source key (one each way). */
  packets: number
  bytes: number
}

/** Two clients with their own keys: A → B and B → A must arrive as RecvPacket with the sender's key and bytes. */
export function relayForward(url: URL | string, o: ForwardOptions): Promise<ForwardResult> {
  const variant = o.variant ?? 'derp'
  const size = o.size ?? 1200
  return withDeadline(o, `relay forwarding (${variant})`, async (d) => {
    const ka = generateKeyPair()
    const kb = generateKeyPair()
    const [a, b] = await Promise.all([openRelay(url, { ...o, variant }, d), openRelay(url, { ...o, variant }, d)])
    try {
      // The Pong proves each ClientInfo was processed, so both are registered before any packet.
      await Promise.all([login(a, ka, d, 'A'), login(b, kb, d, 'B')])
      await sendAndReceive(a, ka, b, kb, randomBytes(size), d, 'A', 'B')
      await sendAndReceive(b, kb, a, ka, randomBytes(size), d, 'B', 'A')
    } finally {
      a.close()
      b.close()
    }
    return { variant, a: keyToHex(ka.publicKey), b: keyToHex(kb.publicKey), packets: 2, bytes: 2 * size }
  })
}

async function sendAndReceive(
  from: RelayConnection,
  fromKeys: RelayKeyPair,
  to: RelayConnection,
  toKeys: RelayKeyPair,
  data: Buffer,
  d: Deadline,
  fromName: string,
  toName: string,
): Promise<void> {
  from.send(FrameType.SendPacket, encodeSendPacket(toKeys.publicKey, data))
  d.stage = `waiting for the packet ${fromName} sent to arrive at ${toName} (the relay did not forward it)`
  const got = await expectFrame(to, (f) => (f.type === FrameType.RecvPacket ? parseRecvPacket(f.payload) : undefined))
  if (!got.key.equals(fromKeys.publicKey)) {
    throw new RelayError(
      'protocol',
      `${toName} received a packet with source ${keyToHex(got.key)}, expected ${fromName}'s key ${keyToHex(fromKeys.publicKey)}`,
    )
  }
  if (!got.data.equals(data)) {
    throw new RelayError(
      'protocol',
      `the relay altered the packet: sent ${data.length} bytes, ${toName} got ${got.data.length} different bytes`,
    )
  }
}
