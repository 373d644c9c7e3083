/**
 * The relay client's connection layer: the endpoint of a relay URL, TCP/TLS connections under one
 * deadline, the HTTP response head, and an upgraded relay connection that queues frames.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { Deadline } from '../lib/deadline.js'
import { READ_LIMITS, ReadLimitError } from '../lib/read-limits.js'
import { classifySocketError } from '../lib/socket-errors.js'
import { contextTrusting, describePeerTls, type PeerTls } from '../lib/tls.js'
import {
  decodeWsMessage,
  encodeFrame,
  encodeWsFrame,
  encodeWsMessage,
  type Frame,
  FrameDecoder,
  FrameType,
  type HttpResponseHead,
  parseHealth,
  parseHttpResponseHead,
  RelayProtocolError,
  type UpgradeVariant,
  WsDecoder,
  WsOpcode,
} from '../protocols/iroh-relay.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'

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

const MAX_HEAD = READ_LIMITS.httpHead

/** Runs `fn` under one deadline for the whole probe; every failure comes out as a RelayError. */
export async function withDeadline<T>(
  opts: RelayProbeOptions,
  what: string,
  fn: (d: Deadline) => Promise<T>,
): Promise<T> {
  const d = new Deadline({
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
    timeoutError: (stage) =>
      new RelayError('timeout', `${what}: no answer within ${opts.timeoutMs} ms while ${stage}`, stage),
    abortError: (stage) => new RelayError('timeout', `${what}: aborted while ${stage}`, stage),
  })
  try {
    return await d.race(fn(d))
  } catch (err) {
    throw asRelayError(err, what)
  } finally {
    d.dispose()
  }
}

function asRelayError(err: unknown, what: string): RelayError {
  if (err instanceof RelayError) return err
  if (err instanceof RelayProtocolError) return new RelayError('protocol', `${what}: ${err.message}`)
  return new RelayError('protocol', `${what}: ${(err as Error)?.message ?? String(err)}`)
}

export interface Endpoint {
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
  return {
    host,
    port: u.port ? Number(u.port) : secure ? DEFAULT_PORTS.https : DEFAULT_PORTS.http,
    secure,
    hostHeader: u.host,
  }
}

function connectError(err: NodeJS.ErrnoException, ep: Endpoint): RelayError {
  const where = `${ep.host}:${ep.port}`
  const c = classifySocketError(err)
  if (c.tls) return new RelayError('tls', `TLS with ${where} failed: ${c.message}`)
  switch (c.failure) {
    case 'refused':
      return new RelayError('refused', `connection to ${where} refused (nothing listens there)`)
    case 'unresolved':
      return new RelayError('refused', `cannot resolve ${ep.host}`)
    case 'timeout':
      return new RelayError('timeout', `connecting to ${where} timed out`)
    default:
      return new RelayError('refused', `cannot connect to ${where}: ${c.message}`)
  }
}

export function connect(
  ep: Endpoint,
  opts: RelayProbeOptions,
  d: Deadline,
): Promise<{ socket: net.Socket; tls?: PeerTls }> {
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
      s.once('secureConnect', () => resolve({ socket: s, tls: describePeerTls(s) }))
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
export function readResponseHead(socket: net.Socket): Promise<{ head: HttpResponseHead; rest: Buffer }> {
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
  /** Bytes read so far: a probe exchanges a few kilobytes, a relay that floods it is cut off. */
  private received = 0

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
    this.received += chunk.length
    if (this.received > READ_LIMITS.relayConnection) {
      const limit = new ReadLimitError('the relay connection', READ_LIMITS.relayConnection)
      this.fail(new RelayError('protocol', limit.message))
      this.socket.destroy()
      return
    }
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
export async function expectFrame<T>(conn: RelayConnection, match: (f: Frame) => T | undefined): Promise<T> {
  for (;;) {
    const f = await conn.next()
    if (f.type === FrameType.Ping) conn.send(FrameType.Pong, f.payload)
    else if (f.type === FrameType.Health && f.payload.length > 0) throw healthError(parseHealth(f.payload))
    else if (f.type === FrameType.Restarting) throw new RelayError('protocol', 'the relay is restarting')
    const v = match(f)
    if (v !== undefined) return v
  }
}
