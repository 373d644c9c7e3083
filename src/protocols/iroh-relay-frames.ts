/**
 * The iroh-relay v0.35 frames, keys and ClientInfo (n0-computer/iroh tag v0.35.0, crate iroh-relay),
 * written from the protocol facts in research/protocols.md section C. Pure codec: no sockets, no timers.
 * The HTTP upgrade and websocket framing are in iroh-relay-http.ts; iroh-relay.ts exports both.
 *
 * - "derp" framing (after `Upgrade: iroh derp http`): `[type u8][len u32 BE][payload]`, max 1 MiB.
 * - websocket framing: one binary message per frame, `[type u8][payload]`, no length.
 * - ClientInfo: MAGIC "RELAY🔑" + 32-byte ed25519 public key + 64-byte signature + postcard(ClientInfo{version: 3}).
 *
 * v0.91+/1.x relays speak a different protocol (subprotocol `iroh-relay-v1`, ServerChallenge first);
 * only what is needed to recognise one lives here.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto'

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
