/**
 * The HTTP side of an iroh relay connection: the upgrade request a client sends, the response
 * head, and RFC 6455 websocket framing (the websocket variant). Pure: no sockets, no timers.
 */
import { createHash } from 'node:crypto'
import {
  DERP_UPGRADE,
  MAX_FRAME_SIZE,
  RELAY_PATH,
  RelayProtocolError,
  V1_CHALLENGE_LEN,
  V1_SERVER_CHALLENGE,
} from './iroh-relay-frames.js'

// ---------------------------------------------------------------- HTTP upgrade

export type UpgradeVariant = 'derp' | 'websocket'

export interface UpgradeRequestOptions {
  variant: UpgradeVariant
  /** `Host` header value (host[:port]). */
  host: string
  path?: string
  /** websocket only: the Sec-WebSocket-Key (base64 of 16 bytes). */
  wsKey?: string
  /** websocket only: subprotocols to offer (a 0.35 client offers none). */
  subprotocols?: string[]
}

/** The request head a real client sends: derp = exactly what iroh 0.35 sends (no Connection header). */
export function buildUpgradeRequest(o: UpgradeRequestOptions): string {
  const lines = [`GET ${o.path ?? RELAY_PATH} HTTP/1.1`, `Host: ${o.host}`]
  if (o.variant === 'derp') {
    lines.push(`Upgrade: ${DERP_UPGRADE}`)
  } else {
    if (!o.wsKey) throw new RelayProtocolError('a websocket upgrade needs a Sec-WebSocket-Key')
    lines.push(
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${o.wsKey}`,
      'Sec-WebSocket-Version: 13',
    )
    if (o.subprotocols && o.subprotocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${o.subprotocols.join(', ')}`)
  }
  return `${lines.join('\r\n')}\r\n\r\n`
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** The Sec-WebSocket-Accept value for a key (RFC 6455 section 4.2.2). */
export const webSocketAccept = (key: string): string =>
  createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64')

export interface HttpResponseHead {
  status: number
  reason: string
  /** Lower-case header names; repeated headers joined with ", ". */
  headers: Record<string, string>
  /** Bytes of the head including the blank line; what follows belongs to the body or the upgraded stream. */
  headLength: number
}

/** Index just past `\r\n\r\n`, or -1 while the head is incomplete. */
export function findHeadEnd(buf: Uint8Array): number {
  const i = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).indexOf('\r\n\r\n')
  return i < 0 ? -1 : i + 4
}

/** Parse an HTTP/1.x response head; null when incomplete, throws when it is not HTTP. */
export function parseHttpResponseHead(buf: Uint8Array): HttpResponseHead | null {
  const end = findHeadEnd(buf)
  if (end < 0) return null
  const text = Buffer.from(buf.buffer, buf.byteOffset, end).toString('latin1')
  const [statusLine = '', ...rest] = text.slice(0, -4).split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
  if (!m) throw new RelayProtocolError(`not an HTTP response: "${statusLine.slice(0, 60)}"`)
  return { status: Number(m[1]), reason: m[2] ?? '', headers: parseHeaderLines(rest), headLength: end }
}

export interface HttpRequestHead {
  method: string
  path: string
  headers: Record<string, string>
  headLength: number
}

/** Parse an HTTP/1.x request head (used by the stand-in relay and tests); null when incomplete. */
export function parseHttpRequestHead(buf: Uint8Array): HttpRequestHead | null {
  const end = findHeadEnd(buf)
  if (end < 0) return null
  const text = Buffer.from(buf.buffer, buf.byteOffset, end).toString('latin1')
  const [requestLine = '', ...rest] = text.slice(0, -4).split('\r\n')
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine)
  if (!m) throw new RelayProtocolError(`not an HTTP request: "${requestLine.slice(0, 60)}"`)
  return { method: m[1]!, path: m[2]!, headers: parseHeaderLines(rest), headLength: end }
}

function parseHeaderLines(lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return headers
}

/** Whether a 101 answers the variant that was asked for (the 0.35 client itself checks only the status). */
export function checkUpgradeResponse(
  head: HttpResponseHead,
  variant: UpgradeVariant,
  wsKey?: string,
): { ok: true } | { ok: false; reason: string } {
  if (head.status !== 101) return { ok: false, reason: `status ${head.status} ${head.reason}`.trim() }
  if (variant === 'websocket' && wsKey) {
    const accept = head.headers['sec-websocket-accept']
    if (accept !== webSocketAccept(wsKey)) return { ok: false, reason: 'wrong or missing Sec-WebSocket-Accept' }
  }
  return { ok: true }
}

/** The subprotocol a 101 selected (1.x relays select `iroh-relay-v1`; 0.35 relays none). */
export const selectedSubprotocol = (head: HttpResponseHead): string | undefined =>
  head.headers['sec-websocket-protocol']?.trim() || undefined

/** Whether a websocket message is a 1.x ServerChallenge: varint type 0 + 16 challenge bytes. */
export function isV1ServerChallenge(message: Uint8Array): boolean {
  return message.length === 1 + V1_CHALLENGE_LEN && message[0] === V1_SERVER_CHALLENGE
}

// ---------------------------------------------------------------- RFC 6455 transport (websocket variant)

export const WsOpcode = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const

export interface WsMessage {
  opcode: number
  payload: Buffer
}

/** One final websocket frame; a client passes a 4-byte mask (RFC 6455: client frames are masked). */
export function encodeWsFrame(opcode: number, payload: Uint8Array, mask?: Uint8Array): Buffer {
  const len = payload.length
  const lenBytes = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + lenBytes + (mask ? 4 : 0))
  head[0] = 0x80 | (opcode & 0x0f)
  head[1] = (mask ? 0x80 : 0) | (lenBytes === 0 ? len : lenBytes === 2 ? 126 : 127)
  if (lenBytes === 2) head.writeUInt16BE(len, 2)
  if (lenBytes === 8) head.writeBigUInt64BE(BigInt(len), 2)
  const body = Buffer.from(payload)
  if (mask) {
    if (mask.length !== 4) throw new RelayProtocolError('a websocket mask has 4 bytes')
    head.set(mask, 2 + lenBytes)
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!
  }
  return Buffer.concat([head, body])
}

/** Incremental websocket decoder: returns whole messages (fragments joined, control frames as they come). */
export class WsDecoder {
  private buf: Buffer = Buffer.alloc(0)
  private fragments: Buffer[] = []
  private fragmentOpcode = 0

  constructor(private readonly maxMessage = MAX_FRAME_SIZE + 1) {}

  push(chunk: Uint8Array): WsMessage[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk])
    const out: WsMessage[] = []
    for (;;) {
      const frame = this.takeFrame()
      if (!frame) break
      const message = this.assemble(frame)
      if (message) out.push(message)
    }
    return out
  }

  private takeFrame(): { fin: boolean; opcode: number; payload: Buffer } | null {
    const b = this.buf
    if (b.length < 2) return null
    const fin = (b[0]! & 0x80) !== 0
    if ((b[0]! & 0x70) !== 0) throw new RelayProtocolError('websocket frame with reserved bits set')
    const opcode = b[0]! & 0x0f
    const masked = (b[1]! & 0x80) !== 0
    let len = b[1]! & 0x7f
    let at = 2
    if (len === 126) {
      if (b.length < 4) return null
      len = b.readUInt16BE(2)
      at = 4
    } else if (len === 127) {
      if (b.length < 10) return null
      const big = b.readBigUInt64BE(2)
      if (big > BigInt(this.maxMessage)) throw new RelayProtocolError(`websocket frame of ${big} bytes is too large`)
      len = Number(big)
      at = 10
    }
    if (len > this.maxMessage) throw new RelayProtocolError(`websocket frame of ${len} bytes is too large`)
    const maskAt = at
    if (masked) at += 4
    if (b.length < at + len) return null
    const payload = Buffer.from(b.subarray(at, at + len))
    if (masked) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ b[maskAt + (i & 3)]!
    this.buf = b.subarray(at + len)
    return { fin, opcode, payload }
  }

  private assemble(f: { fin: boolean; opcode: number; payload: Buffer }): WsMessage | null {
    if (f.opcode >= 8) return { opcode: f.opcode, payload: f.payload }
    if (f.opcode !== WsOpcode.Continuation) {
      if (this.fragments.length > 0) throw new RelayProtocolError('new websocket message inside a fragmented one')
      if (f.fin) return { opcode: f.opcode, payload: f.payload }
      this.fragmentOpcode = f.opcode
      this.fragments = [f.payload]
      return null
    }
    if (this.fragments.length === 0) throw new RelayProtocolError('websocket continuation without a start')
    this.fragments.push(f.payload)
    const size = this.fragments.reduce((n, p) => n + p.length, 0)
    if (size > this.maxMessage) throw new RelayProtocolError(`websocket message of ${size} bytes is too large`)
    if (!f.fin) return null
    const message = { opcode: this.fragmentOpcode, payload: Buffer.concat(this.fragments) }
    this.fragments = []
    return message
  }
}
