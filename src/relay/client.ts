/**
 * Probes of an iroh-relay (v0.35 protocol, what Delta Chat's iroh 0.35 speaks), written on raw
 * net/tls sockets: Node's http client does not handle the `Upgrade: iroh derp http` 101.
 *
 * Every probe takes `{ timeoutMs, signal?, ca?, insecure? }`, never outlives its timeout, and closes
 * every socket it opened (except the connection `relayUpgrade` hands back on a 101, which the caller closes).
 * Failures are `RelayError`s with a `kind` the doctor maps to a hint.
 */

import { randomBytes } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { raceAbort } from '../lib/abort.js'
import { contextTrusting } from '../lib/tls.js'
import {
  buildClientInfo,
  buildUpgradeRequest,
  checkUpgradeResponse,
  decodeWsMessage,
  encodeFrame,
  encodeSendPacket,
  encodeWsFrame,
  encodeWsMessage,
  type Frame,
  FrameDecoder,
  FrameType,
  generateKeyPair,
  type HttpResponseHead,
  isV1ServerChallenge,
  keyToHex,
  parseHealth,
  parseHttpResponseHead,
  parseRecvPacket,
  type RelayKeyPair,
  RelayProtocolError,
  selectedSubprotocol,
  type UpgradeVariant,
  V1_SUBPROTOCOL,
  WsDecoder,
  WsOpcode,
} from '../protocols/iroh-relay.js'

export type RelayErrorKind = 'timeout' | 'refused' | 'tls' | 'http' | 'protocol' | 'auth'

export class RelayError extends Error {
  readonly kind: RelayErrorKind
  /** For timeouts: what the probe was waiting for (e.g. "waiting for the Pong to the probe's Ping"). */
  readonly stage: string | undefined
  /** For 'http': the status the relay answered instead of 101. */
  readonly status: number | undefined
  constructor(kind: RelayErrorKind, message: string, stage?: string, status?: number) {
    super(message)
    this.name = 'RelayError'
    this.kind = kind
    this.stage = stage
    this.status = status
  }
}

export interface RelayProbeOptions {
  timeoutMs: number
  signal?: AbortSignal
  /** Extra trusted CA certificate(s), PEM. */
  ca?: string
  /** Do not verify the certificate (the result still says whether it was valid). */
  insecure?: boolean
}

export interface TlsInfo {
  /** Whether the certificate verified (against the system roots plus `ca`). */
  authorized: boolean
  /** Why it did not, when it did not. */
  error?: string
  protocol?: string
}

const MAX_HEAD = 32 * 1024

// ---------------------------------------------------------------- deadline

/** One time budget for a probe: aborts on timeout or on the caller's signal, then destroys its sockets. */
class Deadline {
  stage = 'connecting'
  private readonly controller = new AbortController()
  private readonly timer: NodeJS.Timeout
  private readonly sockets = new Set<net.Socket>()
  private readonly onOuterAbort = () => this.abort(`aborted while ${this.stage}`)

  constructor(
    private readonly opts: RelayProbeOptions,
    private readonly what: string,
  ) {
    this.timer = setTimeout(
      () => this.abort(`no answer within ${opts.timeoutMs} ms while ${this.stage}`),
      opts.timeoutMs,
    )
    if (opts.signal?.aborted) this.onOuterAbort()
    else opts.signal?.addEventListener('abort', this.onOuterAbort, { once: true })
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  private abort(why: string): void {
    if (!this.controller.signal.aborted) {
      this.controller.abort(new RelayError('timeout', `${this.what}: ${why}`, this.stage))
    }
    for (const s of this.sockets) s.destroy()
  }

  race<T>(p: Promise<T>): Promise<T> {
    return raceAbort(p, this.controller.signal)
  }

  track(socket: net.Socket): void {
    if (this.controller.signal.aborted) socket.destroy()
    this.sockets.add(socket)
  }

  /** Hand a socket over to the caller: it survives `finish()`. */
  release(socket: net.Socket): void {
    this.sockets.delete(socket)
  }

  /** Milliseconds left (at least 0). */
  remaining(started: number): number {
    return Math.max(0, this.opts.timeoutMs - (Date.now() - started))
  }

  finish(): void {
    clearTimeout(this.timer)
    this.opts.signal?.removeEventListener('abort', this.onOuterAbort)
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }
}

async function withDeadline<T>(opts: RelayProbeOptions, what: string, fn: (d: Deadline) => Promise<T>): Promise<T> {
  const d = new Deadline(opts, what)
  try {
    return await d.race(fn(d))
  } catch (err) {
    throw asRelayError(err, what)
  } finally {
    d.finish()
  }
}

function asRelayError(err: unknown, what: string): RelayError {
  if (err instanceof RelayError) return err
  if (err instanceof RelayProtocolError) return new RelayError('protocol', `${what}: ${err.message}`)
  return new RelayError('protocol', `${what}: ${(err as Error)?.message ?? String(err)}`)
}

// ---------------------------------------------------------------- sockets

interface Endpoint {
  host: string
  port: number
  secure: boolean
  /** Host header value. */
  hostHeader: string
}

export function relayEndpoint(url: URL | string): Endpoint {
  const u = typeof url === 'string' ? new URL(url) : url
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new RelayError('protocol', `relay URL ${u.href}: scheme ${u.protocol} is not http or https`)
  }
  const secure = u.protocol === 'https:'
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  return { host, port: u.port ? Number(u.port) : secure ? 443 : 80, secure, hostHeader: u.host }
}

const TLS_CODE = /CERT|UNABLE_TO|SELF_SIGNED|^ERR_TLS|^ERR_SSL|HOSTNAME|ALTNAME/

function connectError(err: NodeJS.ErrnoException, ep: Endpoint): RelayError {
  const where = `${ep.host}:${ep.port}`
  const code = err.code ?? ''
  if (TLS_CODE.test(code) || /certificate|ssl|tls/i.test(err.message)) {
    return new RelayError('tls', `TLS with ${where} failed: ${err.message}`)
  }
  if (code === 'ECONNREFUSED')
    return new RelayError('refused', `connection to ${where} refused (nothing listens there)`)
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new RelayError('refused', `cannot resolve ${ep.host}`)
  if (code === 'ETIMEDOUT') return new RelayError('timeout', `connecting to ${where} timed out`)
  return new RelayError('refused', `cannot connect to ${where}: ${err.message}`)
}

function tlsInfo(s: tls.TLSSocket): TlsInfo {
  const raw = s.authorizationError as unknown
  const error = raw === null || raw === undefined ? undefined : raw instanceof Error ? raw.message : String(raw)
  return { authorized: s.authorized, ...(error ? { error } : {}), protocol: s.getProtocol() ?? undefined }
}

function connect(ep: Endpoint, opts: RelayProbeOptions, d: Deadline): Promise<{ socket: net.Socket; tls?: TlsInfo }> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket
    if (ep.secure) {
      const s = tls.connect({
        host: ep.host,
        port: ep.port,
        ...(net.isIP(ep.host) ? {} : { servername: ep.host }),
        ...(opts.ca ? { secureContext: contextTrusting(opts.ca) } : {}),
        rejectUnauthorized: !opts.insecure,
        ALPNProtocols: ['http/1.1'],
      })
      s.once('secureConnect', () => resolve({ socket: s, tls: tlsInfo(s) }))
      socket = s
    } else {
      socket = net.connect({ host: ep.host, port: ep.port })
      socket.once('connect', () => resolve({ socket }))
    }
    socket.setNoDelay(true)
    socket.once('error', (err) => reject(connectError(err, ep)))
    d.track(socket)
  })
}

/** Read an HTTP response head; the socket is left paused with the bytes after the head returned. */
function readResponseHead(socket: net.Socket): Promise<{ head: HttpResponseHead; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const cleanup = () => {
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
    }
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      let head: HttpResponseHead | null
      try {
        head = parseHttpResponseHead(buf)
      } catch (err) {
        cleanup()
        reject(new RelayError('http', (err as Error).message))
        return
      }
      if (!head) {
        if (buf.length > MAX_HEAD) {
          cleanup()
          reject(new RelayError('http', `response head larger than ${MAX_HEAD} bytes`))
        }
        return
      }
      socket.pause()
      cleanup()
      resolve({ head, rest: buf.subarray(head.headLength) })
    }
    const onClose = () => {
      cleanup()
      reject(
        new RelayError(
          'http',
          `the server closed the connection before a complete HTTP response (${buf.length} bytes)`,
        ),
      )
    }
    const onError = (err: Error) => {
      cleanup()
      reject(new RelayError('http', `connection error before an HTTP response: ${err.message}`))
    }
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('error', onError)
  })
}

// ---------------------------------------------------------------- plain GETs

export interface HttpProbeResult {
  status: number
  reason: string
  headers: Record<string, string>
  tls?: TlsInfo
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

// ---------------------------------------------------------------- relay connection

/** An upgraded relay connection, either framing. Frames from the relay are queued until read. */
export class RelayConnection {
  private readonly queue: Frame[] = []
  private waiter?: { resolve: (f: Frame) => void; reject: (e: RelayError) => void }
  private failure?: RelayError
  private lastHealth = ''
  private readonly derp = new FrameDecoder()
  private readonly ws = new WsDecoder()
  /** Raw websocket binary messages (for 1.x detection, where frames are not 0.35 frames). */
  readonly rawMessages: Buffer[] = []

  constructor(
    readonly socket: net.Socket,
    readonly variant: UpgradeVariant,
    leftover: Buffer,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.once('close', () => this.fail(this.closedError()))
    socket.on('error', (err) => this.fail(new RelayError('protocol', `relay connection error: ${err.message}`)))
    if (leftover.length > 0) this.onData(leftover)
    socket.resume()
  }

  send(type: number, payload: Uint8Array = Buffer.alloc(0)): void {
    if (this.failure) throw this.failure
    if (this.variant === 'derp') this.socket.write(encodeFrame(type, payload))
    else this.socket.write(encodeWsFrame(WsOpcode.Binary, encodeWsMessage(type, payload), randomBytes(4)))
  }

  /** The next frame from the relay; rejects when the connection ends. */
  next(): Promise<Frame> {
    const f = this.queue.shift()
    if (f) return Promise.resolve(f)
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }

  close(): void {
    if (!this.failure) this.failure = new RelayError('protocol', 'connection closed by us')
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    try {
      if (this.variant === 'derp') {
        for (const f of this.derp.push(chunk)) this.deliver(f)
        return
      }
      for (const m of this.ws.push(chunk)) this.onWsMessage(m.opcode, m.payload)
    } catch (err) {
      this.fail(new RelayError('protocol', `malformed data from the relay: ${(err as Error).message}`))
      this.socket.destroy()
    }
  }

  private onWsMessage(opcode: number, payload: Buffer): void {
    if (opcode === WsOpcode.Binary) {
      this.rawMessages.push(payload)
      this.deliver(decodeWsMessage(payload))
    } else if (opcode === WsOpcode.Ping) {
      this.socket.write(encodeWsFrame(WsOpcode.Pong, payload, randomBytes(4)))
    } else if (opcode === WsOpcode.Close) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined
      const text = payload.subarray(2).toString('utf8')
      this.fail(
        new RelayError('protocol', `the relay closed the websocket (${code ?? 'no code'}${text ? `: ${text}` : ''})`),
      )
      this.socket.end()
    } else if (opcode === WsOpcode.Text) {
      throw new RelayProtocolError('the relay sent a text websocket message')
    }
  }

  private deliver(f: Frame): void {
    if (f.type === FrameType.Health) this.lastHealth = parseHealth(f.payload)
    const w = this.waiter
    if (w) {
      this.waiter = undefined
      w.resolve(f)
    } else this.queue.push(f)
  }

  private closedError(): RelayError {
    if (this.lastHealth) return healthError(this.lastHealth)
    return new RelayError('protocol', 'the relay closed the connection')
  }

  private fail(err: RelayError): void {
    if (!this.failure) this.failure = err
    const w = this.waiter
    this.waiter = undefined
    w?.reject(this.failure)
  }
}

function healthError(text: string): RelayError {
  const kind = /auth|denied|not allowed|forbidden/i.test(text) ? 'auth' : 'protocol'
  return new RelayError(kind, `the relay reports a problem: ${text}`)
}

/**
 * Read frames until `match` returns a value. Answers the relay's Pings like a real client;
 * a Health frame with text or a Restarting frame is a failure.
 */
async function expectFrame<T>(conn: RelayConnection, match: (f: Frame) => T | undefined): Promise<T> {
  for (;;) {
    const f = await conn.next()
    if (f.type === FrameType.Ping) conn.send(FrameType.Pong, f.payload)
    else if (f.type === FrameType.Health && f.payload.length > 0) throw healthError(parseHealth(f.payload))
    else if (f.type === FrameType.Restarting) throw new RelayError('protocol', 'the relay is restarting')
    const v = match(f)
    if (v !== undefined) return v
  }
}

// ---------------------------------------------------------------- upgrade

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
  tls?: TlsInfo
  /** When the status is 101: the live connection; the caller must close it. */
  connection?: RelayConnection
}

async function upgradeWithin(url: URL | string, o: UpgradeOptions, d: Deadline): Promise<UpgradeResult> {
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
  tls?: TlsInfo
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

// ---------------------------------------------------------------- version

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
    const started = Date.now()
    const ws = await upgradeWithin(url, { ...opts, variant: 'websocket', subprotocols: [V1_SUBPROTOCOL] }, d)
    if (ws.connection) {
      const conn = ws.connection
      try {
        if (ws.subprotocol === V1_SUBPROTOCOL) {
          d.stage = 'waiting for a 1.x ServerChallenge'
          const first = await firstMessageWithin(conn, Math.min(2000, d.remaining(started) / 2))
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
