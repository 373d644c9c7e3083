/**
 * A TURN client that does one thing: Allocate a relayed address over udp, tcp or tls with
 * long-term (TURN REST) credentials, then release it (RFC 8656 §7, RFC 8489 §9.2).
 *
 * Allocate without credentials → 401 with REALM and NONCE → Allocate again (new transaction id)
 * with USERNAME, REALM, NONCE, MESSAGE-INTEGRITY, FINGERPRINT → on 438 retry once with the new
 * nonce → success: XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS, LIFETIME → Refresh LIFETIME=0.
 * Never hangs: timeoutMs and the signal abort everything and close the socket.
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIP, type Socket, connect as tcpConnect } from 'node:net'
import { checkServerIdentity, type TLSSocket, connect as tlsConnect } from 'node:tls'
import { raceAbort } from '../lib/abort.js'
import { contextTrusting } from '../lib/tls.js'
import {
  Attr,
  attr,
  decodeMessage,
  describeType,
  encodeMessage,
  frameLength,
  getErrorCode,
  getLifetime,
  getString,
  getXorAddress,
  longTermKey,
  Method,
  messageType,
  newTransactionId,
  type StunAttribute,
  StunDecodeError,
  type StunMessage,
  splitMessageType,
  type TransportAddress,
  verifyMessageIntegrity,
} from '../protocols/stun.js'

export type { TransportAddress } from '../protocols/stun.js'

export type TurnTransport = 'udp' | 'tcp' | 'tls'

export interface AllocateOptions {
  host: string
  port: number
  transport: TurnTransport
  username: string
  password: string
  timeoutMs: number
  signal?: AbortSignal
  /** ca: extra trusted CA certificate(s), PEM, added to Node's roots. */
  tls?: { ca?: string; rejectUnauthorized?: boolean; servername?: string }
}

export interface TlsInfo {
  /** Whether the certificate chain and host name verified (even when rejectUnauthorized was false). */
  authorized: boolean
  authorizationError?: string
  subject?: string
  validTo?: string
}

export interface AllocateResult {
  relayed: TransportAddress
  mapped?: TransportAddress
  /** Seconds the server granted. */
  lifetime: number
  realm: string
  software?: string
  /** True when the Refresh with LIFETIME=0 succeeded. */
  released: boolean
  /** Request/response round trips, the release included. */
  rtts: number
  tls?: TlsInfo
  /** The address the client talked to (after DNS). */
  server?: TransportAddress
}

export type TurnErrorKind =
  | 'timeout'
  | 'unreachable'
  | 'refused'
  | 'auth'
  | 'stale-nonce'
  | 'tls'
  | 'protocol'
  | 'server'

export class TurnError extends Error {
  readonly kind: TurnErrorKind
  /** The STUN error code when the server answered with one: 401, 438, 441, 437, 486... */
  readonly code?: number
  constructor(kind: TurnErrorKind, message: string, code?: number) {
    super(message)
    this.name = 'TurnError'
    this.kind = kind
    if (code !== undefined) this.code = code
  }
}

const SOFTWARE = 'chatmail doctor'
/** RFC 8489 §6.2.1: initial retransmission timeout over UDP, doubled on each retransmission. */
const INITIAL_RTO_MS = 500

export async function allocate(o: AllocateOptions): Promise<AllocateResult> {
  checkOptions(o)
  const deadline = new Deadline(o)
  let conn: Connection | undefined
  try {
    const server = await deadline.race(resolve(o.host, o.port))
    conn = await deadline.race(open(o, server, deadline.signal))
    const session = new Session(conn, deadline.signal, o)
    const result = await session.allocate()
    return { ...result, server, ...(conn.tls ? { tls: conn.tls } : {}) }
  } catch (err) {
    throw deadline.explain(err, conn)
  } finally {
    conn?.close()
    deadline.dispose()
  }
}

export interface Credentials {
  username: string
  password: string
}

/** An Allocate begun before the credentials are known: connected, and challenged (401, REALM, NONCE). */
export interface PendingAllocation {
  /** Sends the authenticated Allocate (and the release); `timeoutMs` and `signal` count from here. */
  complete(creds: Credentials, limits: { timeoutMs: number; signal?: AbortSignal }): Promise<AllocateResult>
  /** Drops the connection (nothing was allocated yet). */
  close(): void
}

export type BeginOptions = Omit<AllocateOptions, 'username' | 'password'>

/**
 * Does what an Allocate needs before credentials: DNS, the connection (the TLS handshake too) and
 * the unauthenticated request that brings REALM and NONCE. A caller that learns the credentials
 * later (the doctor, from IMAP METADATA) then needs one round trip, not three.
 */
export async function beginAllocation(o: BeginOptions): Promise<PendingAllocation> {
  const noCreds = { ...o, username: '', password: '' }
  checkOptions(noCreds)
  const deadline = new Deadline(noCreds)
  let conn: Connection | undefined
  try {
    const server = await deadline.race(resolve(o.host, o.port))
    conn = await deadline.race(open(noCreds, server, deadline.signal))
    const session = new Session(conn, deadline.signal, noCreds)
    const first = await session.challengeFirst()
    const opened = conn
    return {
      close: () => opened.close(),
      complete: async (creds, limits) => {
        const finish = new Deadline({
          ...noCreds,
          timeoutMs: limits.timeoutMs,
          ...(limits.signal ? { signal: limits.signal } : {}),
        })
        finish.signal.addEventListener('abort', () => opened.close(), { once: true })
        try {
          const result = await session.continueWith(first, creds, finish.signal)
          return { ...result, server, ...(opened.tls ? { tls: opened.tls } : {}) }
        } catch (err) {
          throw finish.explain(err, opened)
        } finally {
          opened.close()
          finish.dispose()
        }
      },
    }
  } catch (err) {
    conn?.close()
    throw deadline.explain(err, conn)
  } finally {
    deadline.dispose()
  }
}

function checkOptions(o: AllocateOptions): void {
  if (!o.host) throw new TypeError('allocate: host is empty')
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new TypeError(`allocate: bad port ${o.port}`)
  if (!(o.timeoutMs > 0)) throw new TypeError(`allocate: timeoutMs must be positive, not ${o.timeoutMs}`)
}

// ---------------------------------------------------------------------------------------------
// Deadline: one timer plus the caller's signal; every wait races against it.

class Deadline {
  private readonly controller = new AbortController()
  private readonly timer: NodeJS.Timeout
  private readonly onOuterAbort = () =>
    this.controller.abort(new TurnError('timeout', `aborted while talking to ${this.what}`))
  readonly signal = this.controller.signal
  private readonly what: string

  constructor(private readonly o: AllocateOptions) {
    const what = `${o.transport.toUpperCase()} ${o.host}:${o.port}`
    this.what = what
    this.timer = setTimeout(
      () => this.controller.abort(new TurnError('timeout', `no answer from ${what} within ${o.timeoutMs}ms`)),
      o.timeoutMs,
    )
    if (o.signal?.aborted) this.onOuterAbort()
    o.signal?.addEventListener('abort', this.onOuterAbort, { once: true })
  }

  race<T>(p: Promise<T>): Promise<T> {
    return raceAbort(p, this.signal)
  }

  /** Turns whatever went wrong into a TurnError, naming the last malformed reply seen on a timeout. */
  explain(err: unknown, conn: Connection | undefined): TurnError {
    if (err instanceof TurnError) {
      if (err.kind === 'timeout' && conn?.lastJunk) {
        return new TurnError('timeout', `${err.message} (ignored a malformed reply: ${conn.lastJunk})`)
      }
      return err
    }
    if (err instanceof StunDecodeError) return new TurnError('protocol', `malformed reply: ${err.message}`)
    return socketError(err, this.o)
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.o.signal?.removeEventListener('abort', this.onOuterAbort)
  }
}

function socketError(err: unknown, o: AllocateOptions): TurnError {
  const e = err as NodeJS.ErrnoException
  const where = `${o.transport.toUpperCase()} ${o.host}:${o.port}`
  switch (e?.code) {
    case 'ECONNREFUSED':
      return new TurnError('refused', `${where} refused the connection (nothing listens there)`)
    case 'ECONNRESET':
    case 'EPIPE':
      return new TurnError('refused', `${where} closed the connection`)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
      return new TurnError('unreachable', `cannot resolve ${o.host}: ${e.code}`)
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return new TurnError('unreachable', `${where} is unreachable (${e.code})`)
    case 'ETIMEDOUT':
      return new TurnError('timeout', `${where} timed out (${e.code})`)
  }
  if (o.transport === 'tls' && /SSL|TLS|certificate|handshake/i.test(e?.message ?? '')) {
    return new TurnError('tls', `TLS handshake with ${where} failed: ${e.message}`)
  }
  return new TurnError('unreachable', `${where}: ${e?.message ?? String(err)}`)
}

async function resolve(host: string, port: number): Promise<TransportAddress> {
  const kind = isIP(host)
  if (kind) return { address: host, port, family: kind === 4 ? 'IPv4' : 'IPv6' }
  const found = await lookup(host)
  return { address: found.address, port, family: found.family === 6 ? 'IPv6' : 'IPv4' }
}

// ---------------------------------------------------------------------------------------------
// Connections: deliver decoded messages by transaction id.

abstract class Connection {
  abstract readonly reliable: boolean
  tls?: TlsInfo
  /** Description of the last reply that could not be decoded (UDP ignores them). */
  lastJunk?: string
  private readonly waiting = new Map<string, (m: StunMessage) => void>()
  private failure?: unknown
  private readonly failWaiters = new Set<(err: unknown) => void>()

  abstract send(data: Buffer): void
  abstract close(): void

  /** Waits for the response to `transactionId`; rejects on socket failure or abort. */
  response(transactionId: Buffer, signal: AbortSignal): Promise<StunMessage> {
    const key = transactionId.toString('hex')
    const p = new Promise<StunMessage>((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure)
      this.waiting.set(key, resolve)
      this.failWaiters.add(reject)
    })
    return raceAbort(p, signal).finally(() => this.waiting.delete(key))
  }

  protected deliver(bytes: Buffer): void {
    let msg: StunMessage
    try {
      msg = decodeMessage(bytes)
    } catch (err) {
      if (this.reliable) throw err
      this.lastJunk = (err as Error).message
      return
    }
    this.waiting.get(msg.transactionId.toString('hex'))?.(msg)
  }

  protected fail(err: unknown): void {
    if (this.failure !== undefined) return
    this.failure = err
    for (const reject of this.failWaiters) reject(err)
    this.failWaiters.clear()
  }
}

class UdpConnection extends Connection {
  readonly reliable = false
  constructor(private readonly socket: UdpSocket) {
    super()
    socket.on('message', (bytes) => this.deliver(bytes))
    socket.on('error', (err) => this.fail(err))
  }
  send(data: Buffer): void {
    this.socket.send(data, (err) => {
      if (err) this.fail(err)
    })
  }
  close(): void {
    try {
      this.socket.close()
    } catch {
      // already closed
    }
  }
}

class StreamConnection extends Connection {
  readonly reliable = true
  private pending: Buffer = Buffer.alloc(0)
  constructor(private readonly socket: Socket | TLSSocket) {
    super()
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => this.fail(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })))
  }
  private onData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk
    try {
      for (let need = frameLength(this.pending); need !== undefined && this.pending.length >= need; ) {
        const frame = this.pending.subarray(0, need)
        this.pending = this.pending.subarray(need)
        if (((frame[0] as number) & 0xc0) === 0) this.deliver(frame)
        need = frameLength(this.pending)
      }
    } catch (err) {
      this.fail(err)
      this.socket.destroy()
    }
  }
  send(data: Buffer): void {
    this.socket.write(data)
  }
  close(): void {
    this.socket.destroy()
  }
}

async function open(o: AllocateOptions, server: TransportAddress, signal: AbortSignal): Promise<Connection> {
  if (o.transport === 'udp') return openUdp(o, server, signal)
  return o.transport === 'tcp' ? openTcp(o, server, signal) : openTls(o, server, signal)
}

function openUdp(o: AllocateOptions, server: TransportAddress, signal: AbortSignal): Promise<Connection> {
  const socket = createSocket(server.family === 'IPv6' ? 'udp6' : 'udp4')
  signal.addEventListener('abort', () => closeQuietly(socket), { once: true })
  return new Promise((resolve, reject) => {
    socket.on('error', reject)
    // A connected UDP socket also hears ICMP "port unreachable" as ECONNREFUSED.
    socket.connect(o.port, server.address, () => {
      socket.off('error', reject)
      resolve(new UdpConnection(socket))
    })
  })
}

function closeQuietly(socket: UdpSocket): void {
  try {
    socket.close()
  } catch {
    // already closed
  }
}

function openTcp(o: AllocateOptions, server: TransportAddress, signal: AbortSignal): Promise<Connection> {
  const socket = tcpConnect({ host: server.address, port: o.port, signal })
  socket.setNoDelay(true)
  return new Promise((resolve, reject) => {
    socket.on('error', reject)
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(new StreamConnection(socket))
    })
  })
}

function openTls(o: AllocateOptions, server: TransportAddress, signal: AbortSignal): Promise<Connection> {
  const servername = o.tls?.servername ?? (isIP(o.host) ? undefined : o.host)
  // Always handshake without rejecting, so the report can say why a certificate is not trusted;
  // refuse below, before any credential is sent.
  const socket = tlsConnect({
    host: server.address,
    port: o.port,
    ...(servername ? { servername } : {}),
    ...(o.tls?.ca ? { secureContext: contextTrusting(o.tls.ca) } : {}),
    rejectUnauthorized: false,
    checkServerIdentity: (_address, cert) => checkServerIdentity(servername ?? o.host, cert),
  })
  signal.addEventListener('abort', () => socket.destroy(), { once: true })
  return new Promise((resolve, reject) => {
    socket.on('error', (err) => reject(tlsHandshakeError(err, o)))
    socket.once('secureConnect', () => {
      const info = tlsInfo(socket)
      if (!info.authorized && o.tls?.rejectUnauthorized !== false) {
        socket.destroy()
        reject(new TurnError('tls', `certificate of ${o.host}:${o.port} is not trusted: ${info.authorizationError}`))
        return
      }
      socket.removeAllListeners('error')
      const conn = new StreamConnection(socket)
      conn.tls = info
      resolve(conn)
    })
  })
}

function tlsHandshakeError(err: unknown, o: AllocateOptions): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code && /^E[A-Z]+$/.test(code)) return err
  return new TurnError('tls', `TLS handshake with ${o.host}:${o.port} failed: ${(err as Error).message}`)
}

function tlsInfo(socket: TLSSocket): TlsInfo {
  const cert = socket.getPeerCertificate()
  const subject = cert?.subject?.CN
  const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined
  return {
    authorized: socket.authorized,
    ...(authorizationError ? { authorizationError } : {}),
    ...(subject ? { subject: Array.isArray(subject) ? subject.join(', ') : subject } : {}),
    ...(cert?.valid_to ? { validTo: cert.valid_to } : {}),
  }
}

// ---------------------------------------------------------------------------------------------
// The Allocate / Refresh exchange

interface Auth {
  realm: string
  nonce: string
  key: Buffer
}

const allocateAttributes = (): StunAttribute[] => [attr.requestedTransport(), attr.software(SOFTWARE)]

class Session {
  private rtts = 0
  constructor(
    private readonly conn: Connection,
    private signal: AbortSignal,
    private creds: Credentials,
  ) {}

  async allocate(): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    return this.finish(await this.challengeFirst())
  }

  /** The unauthenticated Allocate; its answer is normally 401 with REALM and NONCE. */
  challengeFirst(): Promise<StunMessage> {
    return this.transact(Method.Allocate, allocateAttributes())
  }

  /** Goes on after `challengeFirst` with credentials learnt since, under a new signal. */
  continueWith(
    first: StunMessage,
    creds: Credentials,
    signal: AbortSignal,
  ): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    this.creds = creds
    this.signal = signal
    return this.finish(first)
  }

  private async finish(first: StunMessage): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    const allocateAttrs = allocateAttributes()
    if (isSuccess(first)) return this.allocated(first, undefined)
    const challenge = this.challenge(first)
    let auth = this.authFrom(challenge)
    let res = await this.transact(Method.Allocate, allocateAttrs, auth)
    if (errorCode(res) === 438) {
      auth = this.authFrom(res)
      res = await this.transact(Method.Allocate, allocateAttrs, auth)
    }
    if (!isSuccess(res)) throw this.rejected(res, 'Allocate', true)
    return this.allocated(res, auth)
  }

  private async allocated(res: StunMessage, auth: Auth | undefined): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    const relayed = getXorAddress(res, Attr.XOR_RELAYED_ADDRESS)
    if (!relayed) throw new TurnError('protocol', 'Allocate success without XOR-RELAYED-ADDRESS')
    const mapped = getXorAddress(res, Attr.XOR_MAPPED_ADDRESS)
    const software = getString(res, Attr.SOFTWARE)
    const lifetime = getLifetime(res) ?? 600
    const released = await this.release(auth)
    return {
      relayed,
      ...(mapped ? { mapped } : {}),
      lifetime,
      realm: auth?.realm ?? '',
      ...(software ? { software } : {}),
      released,
      rtts: this.rtts,
    }
  }

  /** Refresh with LIFETIME=0; best effort: a failure leaves the allocation to expire. */
  private async release(auth: Auth | undefined): Promise<boolean> {
    try {
      let res = await this.transact(Method.Refresh, [attr.lifetime(0)], auth)
      if (auth && errorCode(res) === 438)
        res = await this.transact(Method.Refresh, [attr.lifetime(0)], this.authFrom(res))
      return isSuccess(res)
    } catch {
      return false
    }
  }

  /** The first answer must be 401 with REALM and NONCE. */
  private challenge(res: StunMessage): StunMessage {
    const code = errorCode(res)
    if (code !== 401) throw this.rejected(res, 'Allocate', false)
    return res
  }

  private authFrom(res: StunMessage): Auth {
    const realm = getString(res, Attr.REALM)
    const nonce = getString(res, Attr.NONCE)
    if (realm === undefined || nonce === undefined) {
      throw new TurnError('protocol', `${errorCode(res)} response without ${realm === undefined ? 'REALM' : 'NONCE'}`)
    }
    return { realm, nonce, key: longTermKey(this.creds.username, realm, this.creds.password) }
  }

  private rejected(res: StunMessage, what: string, authenticated: boolean): TurnError {
    const err = getErrorCode(res)
    if (!err) return new TurnError('protocol', `unexpected ${describeType(res.type)} to ${what}`)
    const text = `${what} refused: ${err.code} ${err.reason || '(no reason)'}`
    if ((err.code === 401 && authenticated) || err.code === 441) return new TurnError('auth', text, err.code)
    if (err.code === 438) return new TurnError('stale-nonce', `${text} (twice)`, err.code)
    return new TurnError('server', text, err.code)
  }

  private async transact(method: number, attributes: StunAttribute[], auth?: Auth): Promise<StunMessage> {
    const transactionId = newTransactionId()
    const authAttrs = auth ? [attr.username(this.creds.username), attr.realm(auth.realm), attr.nonce(auth.nonce)] : []
    const request = encodeMessage(
      { type: messageType(method, 'request'), transactionId, attributes: [...attributes, ...authAttrs] },
      { ...(auth ? { integrityKey: auth.key } : {}), fingerprint: true },
    )
    const res = await this.exchange(request, transactionId)
    this.rtts++
    checkResponse(res, method, auth)
    return res
  }

  /** Sends, and over UDP retransmits with a doubling timeout, until the response or the deadline. */
  private async exchange(request: Buffer, transactionId: Buffer): Promise<StunMessage> {
    const waiting = this.conn.response(transactionId, this.signal)
    this.conn.send(request)
    if (this.conn.reliable) return waiting
    let rto = INITIAL_RTO_MS
    let timer: NodeJS.Timeout | undefined
    const retransmit = () => {
      this.conn.send(request)
      rto *= 2
      timer = setTimeout(retransmit, rto)
    }
    timer = setTimeout(retransmit, rto)
    try {
      return await waiting
    } finally {
      clearTimeout(timer)
    }
  }
}

function isSuccess(res: StunMessage): boolean {
  return splitMessageType(res.type).cls === 'success'
}

function errorCode(res: StunMessage): number | undefined {
  return getErrorCode(res)?.code
}

/** The response must be to the method asked, and signed with our key when it carries a signature. */
function checkResponse(res: StunMessage, method: number, auth: Auth | undefined): void {
  const { method: got, cls } = splitMessageType(res.type)
  if (got !== method || (cls !== 'success' && cls !== 'error')) {
    throw new TurnError(
      'protocol',
      `expected a response to ${describeType(messageType(method, 'request'))}, got ${describeType(res.type)}`,
    )
  }
  if (auth && isSuccess(res) && verifyMessageIntegrity(res, auth.key) === false) {
    throw new TurnError(
      'protocol',
      `${describeType(res.type)} has a MESSAGE-INTEGRITY that does not verify with our key`,
    )
  }
}
