/**
 * TURN connections over UDP, TCP and TLS: each delivers decoded STUN messages by transaction id
 * and fails every waiter when the socket fails.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIP, type Socket, connect as tcpConnect } from 'node:net'
import { checkServerIdentity, type TLSSocket, connect as tlsConnect } from 'node:tls'
import { raceAbort } from '../lib/abort.js'
import { classifySocketError } from '../lib/socket-errors.js'
import { contextTrusting, describePeerTls, type PeerTls } from '../lib/tls.js'
import {
  decodeMessage,
  frameLength,
  type StunMessage,
  splitMessageType,
  type TransportAddress,
} from '../protocols/stun.js'
import { type AllocateOptions, TurnError } from './types.js'

/** Turns a socket failure into a TurnError that says where and what. */
export function socketError(err: unknown, o: AllocateOptions): TurnError {
  const c = classifySocketError(err)
  const where = `${o.transport.toUpperCase()} ${o.host}:${o.port}`
  switch (c.failure) {
    case 'refused':
      return new TurnError('refused', `${where} refused the connection (nothing listens there)`)
    case 'reset':
      return new TurnError('refused', `${where} closed the connection`)
    case 'unresolved':
      return new TurnError('unreachable', `cannot resolve ${o.host}: ${c.code}`)
    case 'unreachable':
      return new TurnError('unreachable', `${where} is unreachable (${c.code})`)
    case 'timeout':
      return new TurnError('timeout', `${where} timed out (${c.code})`)
  }
  if (o.transport === 'tls' && c.tls) return new TurnError('tls', `TLS handshake with ${where} failed: ${c.message}`)
  return new TurnError('unreachable', `${where}: ${c.message}`)
}

export async function resolve(host: string, port: number): Promise<TransportAddress> {
  const kind = isIP(host)
  if (kind) return { address: host, port, family: kind === 4 ? 'IPv4' : 'IPv6' }
  const found = await lookup(host)
  return { address: found.address, port, family: found.family === 6 ? 'IPv6' : 'IPv4' }
}

export abstract class Connection {
  abstract readonly reliable: boolean
  tls?: PeerTls
  /** Description of the last reply that could not be decoded (UDP ignores them). */
  lastJunk?: string
  /** Hears the server's indications (Data, RFC 8656 §11.4), which answer no transaction. */
  onIndication?: (msg: StunMessage) => void
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
    const waiter = this.waiting.get(msg.transactionId.toString('hex'))
    if (waiter) waiter(msg)
    else if (splitMessageType(msg.type).cls === 'indication') this.onIndication?.(msg)
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
    try {
      this.socket.send(data, (err) => {
        if (err) this.fail(err)
      })
    } catch (err) {
      this.fail(err) // closed already (the deadline passed)
    }
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

export async function open(o: AllocateOptions, server: TransportAddress, signal: AbortSignal): Promise<Connection> {
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
      const info = describePeerTls(socket)
      if (!info.authorized && o.tls?.rejectUnauthorized !== false) {
        socket.destroy()
        reject(new TurnError('tls', `certificate of ${o.host}:${o.port} is not trusted: ${info.error}`))
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
