/**
 * The iroh-relay v0.35 wire format (n0-computer/iroh tag v0.35.0, crate iroh-relay), written from the
 * protocol facts in research/protocols.md section C. Pure codec: no sockets, no timers.
 *
 * - "derp" framing (after `Upgrade: iroh derp http`): `[type u8][len u32 BE][payload]`, max 1 MiB.
 * - websocket framing: one binary message per frame, `[type u8][payload]`, no length.
 * - ClientInfo: MAGIC "RELAY🔑" + 32-byte ed25519 public key + 64-byte signature + postcard(ClientInfo{version: 3}).
 *
 * v0.91+/1.x relays speak a different protocol (subprotocol `iroh-relay-v1`, ServerChallenge first);
 * only what is needed to recognise one lives here.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'

export const FrameType = {
  ServerKey: 1,
  ClientInfo: 2,
  ServerInfo: 3,
  SendPacket: 4,
  RecvPacket: 5,
  KeepAlive: 6,
  NotePreferred: 7,
  PeerGone: 8,
  PeerPresent: 9,
  WatchConns: 10,
  ClosePeer: 11,
  Ping: 12,
  Pong: 13,
  Health: 14,
  Restarting: 15,
} as const
export type FrameTypeName = keyof typeof FrameType

export const HEADER_LEN = 5
export const MAX_FRAME_SIZE = 1024 * 1024
export const MAX_PACKET_SIZE = 64 * 1024
export const KEY_LEN = 32
export const SIGNATURE_LEN = 64
export const PING_LEN = 8
export const PROTOCOL_VERSION = 3
/** "RELAY🔑" in UTF-8. */
export const MAGIC = Buffer.from('RELAY🔑', 'utf8')
export const CLIENT_INFO_LEN = MAGIC.length + KEY_LEN + SIGNATURE_LEN + 1

/** The path a client upgrades on; `/derp` is the legacy alias. */
export const RELAY_PATH = '/relay'
export const DERP_UPGRADE = 'iroh derp http'
/** The 1.x (v0.91+) websocket subprotocol; a 0.35 relay never sends it. */
export const V1_SUBPROTOCOL = 'iroh-relay-v1'
/** 1.x frame type of the server's first message (QUIC varint 0) and its 16-byte challenge. */
export const V1_SERVER_CHALLENGE = 0
export const V1_CHALLENGE_LEN = 16

export class RelayProtocolError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RelayProtocolError'
  }
}

export interface Frame {
  type: number
  payload: Buffer
}

export function frameTypeName(type: number): string {
  const entry = Object.entries(FrameType).find(([, v]) => v === type)
  return entry ? entry[0] : `unknown(${type})`
}

// ---------------------------------------------------------------- framing

/** derp framing: `[type u8][len u32 BE][payload]`. */
export function encodeFrame(type: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RelayProtocolError(`frame type ${type} out of range`)
  if (payload.length > MAX_FRAME_SIZE) {
    throw new RelayProtocolError(`frame of ${payload.length} bytes exceeds the ${MAX_FRAME_SIZE}-byte maximum`)
  }
  const out = Buffer.alloc(HEADER_LEN + payload.length)
  out.writeUInt8(type, 0)
  out.writeUInt32BE(payload.length, 1)
  out.set(payload, HEADER_LEN)
  return out
}

/** Incremental decoder for derp framing: feed chunks as they arrive, get whole frames back. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0)

  /** Frames completed by this chunk. Throws RelayProtocolError on a frame larger than 1 MiB. */
  push(chunk: Uint8Array): Frame[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk])
    const frames: Frame[] = []
    for (;;) {
      if (this.buf.length < HEADER_LEN) break
      const len = this.buf.readUInt32BE(1)
      if (len > MAX_FRAME_SIZE) {
        throw new RelayProtocolError(`frame length ${len} exceeds the ${MAX_FRAME_SIZE}-byte maximum`)
      }
      if (this.buf.length < HEADER_LEN + len) break
      const type = this.buf.readUInt8(0)
      frames.push({ type, payload: Buffer.from(this.buf.subarray(HEADER_LEN, HEADER_LEN + len)) })
      this.buf = this.buf.subarray(HEADER_LEN + len)
    }
    return frames
  }

  /** Bytes received that do not yet form a whole frame. */
  get pending(): number {
    return this.buf.length
  }
}

/** websocket framing: a binary message `[type u8][payload]`. */
export function encodeWsMessage(type: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RelayProtocolError(`frame type ${type} out of range`)
  if (payload.length > MAX_FRAME_SIZE) {
    throw new RelayProtocolError(`frame of ${payload.length} bytes exceeds the ${MAX_FRAME_SIZE}-byte maximum`)
  }
  const out = Buffer.alloc(1 + payload.length)
  out.writeUInt8(type, 0)
  out.set(payload, 1)
  return out
}

export function decodeWsMessage(message: Uint8Array): Frame {
  if (message.length < 1) throw new RelayProtocolError('empty websocket message (no frame type)')
  if (message.length - 1 > MAX_FRAME_SIZE) throw new RelayProtocolError('websocket message exceeds 1 MiB')
  const buf = Buffer.from(message)
  return { type: buf.readUInt8(0), payload: Buffer.from(buf.subarray(1)) }
}

// ---------------------------------------------------------------- keys

export interface RelayKeyPair {
  /** Raw 32-byte ed25519 public key: the iroh NodeId. */
  publicKey: Buffer
  privateKey: KeyObject
}

/** DER prefix of a PKCS#8 ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' })
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new RelayProtocolError('not an ed25519 key')
  return Buffer.from(jwk.x, 'base64url')
}

export function generateKeyPair(): RelayKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey: rawPublicKey(privateKey) }
}

/** A key pair from a 32-byte secret (iroh's SecretKey bytes). */
export function keyPairFromSeed(seed: Uint8Array): RelayKeyPair {
  if (seed.length !== 32) throw new RelayProtocolError(`an ed25519 seed has 32 bytes, not ${seed.length}`)
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  })
  return { privateKey, publicKey: rawPublicKey(privateKey) }
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== KEY_LEN) throw new RelayProtocolError(`an ed25519 public key has 32 bytes, not ${raw.length}`)
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  })
}

/** The NodeId as iroh prints it: 64 lowercase hex characters. */
export const keyToHex = (key: Uint8Array): string => Buffer.from(key).toString('hex')

export function keyFromHex(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new RelayProtocolError(`"${hex}" is not a 64-character hex node id`)
  return Buffer.from(hex, 'hex')
}

// ---------------------------------------------------------------- ClientInfo

export interface ClientInfo {
  publicKey: Buffer
  signature: Buffer
  /** postcard(ClientInfo{version}): for versions < 128 the single byte `version`. */
  message: Buffer
  version: number
  signatureValid: boolean
}

/** The ClientInfo payload (106 bytes for version 3). */
export function buildClientInfo(keys: RelayKeyPair, version = PROTOCOL_VERSION): Buffer {
  const message = encodeVarint(version)
  const signature = sign(null, message, keys.privateKey)
  return Buffer.concat([MAGIC, keys.publicKey, signature, message])
}

export function parseClientInfo(payload: Uint8Array): ClientInfo {
  const buf = Buffer.from(payload)
  const minLen = MAGIC.length + KEY_LEN + SIGNATURE_LEN + 1
  if (buf.length < minLen) throw new RelayProtocolError(`ClientInfo of ${buf.length} bytes, expected ${minLen}`)
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC))
    throw new RelayProtocolError('ClientInfo does not start with the magic "RELAY🔑"')
  let at = MAGIC.length
  const publicKey = buf.subarray(at, at + KEY_LEN)
  at += KEY_LEN
  const signature = buf.subarray(at, at + SIGNATURE_LEN)
  at += SIGNATURE_LEN
  const message = buf.subarray(at)
  const { value: version, length } = decodeVarint(message)
  if (length !== message.length) throw new RelayProtocolError('ClientInfo message has trailing bytes')
  let signatureValid = false
  try {
    signatureValid = verify(null, message, publicKeyObject(publicKey), signature)
  } catch {
    signatureValid = false
  }
  return {
    publicKey: Buffer.from(publicKey),
    signature: Buffer.from(signature),
    message: Buffer.from(message),
    version,
    signatureValid,
  }
}

/** postcard's unsigned LEB128 varint (u32). */
export function encodeVarint(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RelayProtocolError(`varint ${value} out of range`)
  const bytes: number[] = []
  let v = value
  do {
    let b = v & 0x7f
    v = Math.floor(v / 128)
    if (v > 0) b |= 0x80
    bytes.push(b)
  } while (v > 0)
  return Buffer.from(bytes)
}

export function decodeVarint(buf: Uint8Array): { value: number; length: number } {
  let value = 0
  for (let i = 0; i < Math.min(buf.length, 5); i++) {
    const b = buf[i]!
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) return { value, length: i + 1 }
  }
  throw new RelayProtocolError('truncated or overlong varint')
}

// ---------------------------------------------------------------- other frames

export function encodePing(data: Uint8Array): Buffer {
  if (data.length !== PING_LEN) throw new RelayProtocolError(`a Ping carries 8 bytes, not ${data.length}`)
  return Buffer.from(data)
}

/** Ping and Pong payloads: exactly 8 bytes. */
export function parsePingPayload(payload: Uint8Array): Buffer {
  if (payload.length !== PING_LEN) throw new RelayProtocolError(`a Ping/Pong carries 8 bytes, not ${payload.length}`)
  return Buffer.from(payload)
}

export interface PacketPayload {
  /** Destination (SendPacket) or source (RecvPacket) node key. */
  key: Buffer
  data: Buffer
}

function encodeKeyed(key: Uint8Array, data: Uint8Array): Buffer {
  if (key.length !== KEY_LEN) throw new RelayProtocolError(`a node key has 32 bytes, not ${key.length}`)
  if (data.length > MAX_PACKET_SIZE) {
    throw new RelayProtocolError(`packet of ${data.length} bytes exceeds the ${MAX_PACKET_SIZE}-byte maximum`)
  }
  return Buffer.concat([key, data])
}

function parseKeyed(payload: Uint8Array, what: string): PacketPayload {
  if (payload.length < KEY_LEN) throw new RelayProtocolError(`${what} of ${payload.length} bytes has no 32-byte key`)
  const buf = Buffer.from(payload)
  return { key: Buffer.from(buf.subarray(0, KEY_LEN)), data: Buffer.from(buf.subarray(KEY_LEN)) }
}

/** SendPacket payload: `[dst key 32][data]`. */
export const encodeSendPacket = (dst: Uint8Array, data: Uint8Array): Buffer => encodeKeyed(dst, data)
export const parseSendPacket = (payload: Uint8Array): PacketPayload => parseKeyed(payload, 'SendPacket')
/** RecvPacket payload: `[src key 32][data]`. */
export const encodeRecvPacket = (src: Uint8Array, data: Uint8Array): Buffer => encodeKeyed(src, data)
export const parseRecvPacket = (payload: Uint8Array): PacketPayload => parseKeyed(payload, 'RecvPacket')

export function parsePeerGone(payload: Uint8Array): Buffer {
  if (payload.length !== KEY_LEN)
    throw new RelayProtocolError(`PeerGone carries a 32-byte key, not ${payload.length} bytes`)
  return Buffer.from(payload)
}

/** Health: a UTF-8 problem description; empty means healthy. */
export const parseHealth = (payload: Uint8Array): string => Buffer.from(payload).toString('utf8')

export function parseRestarting(payload: Uint8Array): { reconnectInMs: number; tryForMs: number } {
  if (payload.length !== 8) throw new RelayProtocolError(`Restarting carries 8 bytes, not ${payload.length}`)
  const buf = Buffer.from(payload)
  return { reconnectInMs: buf.readUInt32BE(0), tryForMs: buf.readUInt32BE(4) }
}

export const encodeNotePreferred = (preferred: boolean): Buffer => Buffer.from([preferred ? 1 : 0])

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
