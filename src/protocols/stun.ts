/**
 * STUN/TURN message codec (RFC 5389/8489, RFC 5766/8656). Pure: no sockets, no clock.
 *
 * A message is a 20-byte header (type, attribute length, magic cookie, 12-byte transaction id)
 * followed by type-length-value attributes, each padded to a multiple of 4 bytes. Decoding
 * never throws anything but StunDecodeError, whatever the input.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'

export const MAGIC_COOKIE = 0x2112a442
export const HEADER_LENGTH = 20
const TRANSACTION_ID_LENGTH = 12
const INTEGRITY_LENGTH = 20
const FINGERPRINT_XOR = 0x5354554e

export const Method = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const

export type MessageClass = 'request' | 'indication' | 'success' | 'error'
const CLASS_BITS: Record<MessageClass, number> = { request: 0, indication: 1, success: 2, error: 3 }
const CLASS_NAMES: MessageClass[] = ['request', 'indication', 'success', 'error']

export const Attr = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  CHANNEL_NUMBER: 0x000c,
  LIFETIME: 0x000d,
  XOR_PEER_ADDRESS: 0x0012,
  DATA: 0x0013,
  REALM: 0x0014,
  NONCE: 0x0015,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_ADDRESS_FAMILY: 0x0017,
  REQUESTED_TRANSPORT: 0x0019,
  XOR_MAPPED_ADDRESS: 0x0020,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
} as const

/** IANA protocol numbers for REQUESTED-TRANSPORT. */
export const TRANSPORT_UDP = 17

/** Reason phrases of the error codes a TURN client meets (RFC 8489 §14.8, RFC 8656 §18). */
export const ERROR_REASONS: Readonly<Record<number, string>> = {
  300: 'Try Alternate',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  420: 'Unknown Attribute',
  437: 'Allocation Mismatch',
  438: 'Stale Nonce',
  440: 'Address Family not Supported',
  441: 'Wrong Credentials',
  442: 'Unsupported Transport Protocol',
  486: 'Allocation Quota Reached',
  500: 'Server Error',
  508: 'Insufficient Capacity',
}

export class StunDecodeError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StunDecodeError'
  }
}

export interface StunAttribute {
  type: number
  value: Buffer
  /** Offset of the attribute header in the raw message (decoded messages only). */
  offset?: number
}

export interface StunMessage {
  type: number
  transactionId: Buffer
  attributes: StunAttribute[]
  /** The bytes the message was decoded from. */
  raw?: Buffer
}

export interface TransportAddress {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

export interface StunErrorCode {
  code: number
  reason: string
}

// ---------------------------------------------------------------------------------------------
// Message type: 12 method bits interleaved with 2 class bits (RFC 8489 §5).

export function messageType(method: number, cls: MessageClass): number {
  const c = CLASS_BITS[cls]
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

export function splitMessageType(type: number): { method: number; cls: MessageClass } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2)
  const c = ((type >> 4) & 1) | ((type >> 7) & 2)
  return { method, cls: CLASS_NAMES[c] as MessageClass }
}

export function newTransactionId(): Buffer {
  return randomBytes(TRANSACTION_ID_LENGTH)
}

// ---------------------------------------------------------------------------------------------
// Keys, CRC32

/** Long-term credential key: MD5(username ":" realm ":" password), 16 raw bytes (RFC 5389 §15.4). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest()
}

/** Short-term credential key: the password bytes (SASLprep is left to the caller). */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(password, 'utf8')
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32 as in ISO 3309 / zlib (reflected polynomial 0xEDB88320). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

// ---------------------------------------------------------------------------------------------
// Attribute values: encoders

const utf8 = (type: number, text: string, max: number): StunAttribute => {
  const value = Buffer.from(text, 'utf8')
  if (value.length > max) throw new RangeError(`attribute 0x${hex4(type)} is ${value.length} bytes, at most ${max}`)
  return { type, value }
}

export const attr = {
  username: (name: string): StunAttribute => utf8(Attr.USERNAME, name, 512),
  realm: (realm: string): StunAttribute => utf8(Attr.REALM, realm, 762),
  nonce: (nonce: string): StunAttribute => utf8(Attr.NONCE, nonce, 762),
  software: (text: string): StunAttribute => utf8(Attr.SOFTWARE, text, 762),
  lifetime: (seconds: number): StunAttribute => ({ type: Attr.LIFETIME, value: u32(seconds) }),
  /** REQUESTED-TRANSPORT: protocol number then 3 reserved bytes (17 = UDP). */
  requestedTransport: (protocol = TRANSPORT_UDP): StunAttribute => ({
    type: Attr.REQUESTED_TRANSPORT,
    value: Buffer.from([protocol & 0xff, 0, 0, 0]),
  }),
  errorCode: (code: number, reason = ERROR_REASONS[code] ?? ''): StunAttribute => {
    if (!Number.isInteger(code) || code < 300 || code > 699) throw new RangeError(`error code ${code} is not 300-699`)
    const head = Buffer.from([0, 0, Math.floor(code / 100), code % 100])
    return { type: Attr.ERROR_CODE, value: Buffer.concat([head, Buffer.from(reason, 'utf8')]) }
  },
  xorAddress: (type: number, addr: Omit<TransportAddress, 'family'>, transactionId: Buffer): StunAttribute => ({
    type,
    value: encodeXorAddress(addr, transactionId),
  }),
}

function u32(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${n} is not an unsigned 32-bit integer`)
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

const hex4 = (n: number): string => n.toString(16).padStart(4, '0')

function xorKey(transactionId: Buffer): Buffer {
  const key = Buffer.alloc(16)
  key.writeUInt32BE(MAGIC_COOKIE, 0)
  transactionId.copy(key, 4)
  return key
}

function encodeXorAddress(addr: Omit<TransportAddress, 'family'>, transactionId: Buffer): Buffer {
  const kind = isIP(addr.address)
  if (kind === 0) throw new RangeError(`${addr.address} is not an IP address`)
  const raw = kind === 4 ? ipv4Bytes(addr.address) : ipv6Bytes(addr.address)
  const key = xorKey(transactionId)
  const out = Buffer.alloc(4 + raw.length)
  out[1] = kind === 4 ? 1 : 2
  out.writeUInt16BE((addr.port ^ (MAGIC_COOKIE >>> 16)) & 0xffff, 2)
  for (let i = 0; i < raw.length; i++) out[4 + i] = (raw[i] as number) ^ (key[i] as number)
  return out
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number))
}

function ipv6Bytes(address: string): Buffer {
  // Embedded IPv4 (::ffff:192.0.2.1) becomes two hex groups; then "::" expands to zero groups.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [((+a << 8) | +b).toString(16), ((+c << 8) | +d).toString(16)].join(':'),
  )
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)))
  const [left, right] = text.split('::').map(groups) as [number[], number[] | undefined]
  const all = right ? [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right] : left
  const out = Buffer.alloc(16)
  all.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2)
  })
  return out
}

// ---------------------------------------------------------------------------------------------
// Attribute values: decoders (each rejects a malformed value with StunDecodeError)

export function decodeXorAddress(value: Buffer, transactionId: Buffer): TransportAddress {
  if (value.length < 4) throw new StunDecodeError(`XOR address attribute is ${value.length} bytes, need at least 4`)
  const family = value[1]
  const size = family === 1 ? 4 : family === 2 ? 16 : 0
  if (size === 0) throw new StunDecodeError(`XOR address has unknown address family ${family}`)
  if (value.length !== 4 + size) {
    throw new StunDecodeError(
      `XOR address for ${family === 1 ? 'IPv4' : 'IPv6'} is ${value.length} bytes, expected ${4 + size}`,
    )
  }
  const key = xorKey(transactionId)
  const port = value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16)
  const raw = Buffer.alloc(size)
  for (let i = 0; i < size; i++) raw[i] = (value[4 + i] as number) ^ (key[i] as number)
  return family === 1
    ? { address: [...raw].join('.'), port, family: 'IPv4' }
    : { address: formatIpv6(raw), port, family: 'IPv6' }
}

/** RFC 5952 text form: lower case, the longest run (≥2) of zero groups as "::". */
function formatIpv6(raw: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => raw.readUInt16BE(i * 2))
  let best = { start: -1, len: 0 }
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > best.len) best = { start: i, len: j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best.len < 2) return hex.join(':')
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.len).join(':')}`
}

export function decodeErrorCode(value: Buffer): StunErrorCode {
  if (value.length < 4) throw new StunDecodeError(`ERROR-CODE is ${value.length} bytes, need at least 4`)
  const cls = (value[2] as number) & 0x07
  const num = value[3] as number
  if (cls < 3 || cls > 6 || num > 99) throw new StunDecodeError(`ERROR-CODE class ${cls} number ${num} is out of range`)
  return { code: cls * 100 + num, reason: decodeUtf8(value.subarray(4), 'ERROR-CODE reason') }
}

export function decodeLifetime(value: Buffer): number {
  if (value.length !== 4) throw new StunDecodeError(`LIFETIME is ${value.length} bytes, expected 4`)
  return value.readUInt32BE(0)
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

function decodeUtf8(value: Buffer, what: string): string {
  try {
    return UTF8.decode(value)
  } catch {
    throw new StunDecodeError(`${what} is not valid UTF-8`)
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface EncodeOptions {
  /** Adds MESSAGE-INTEGRITY (HMAC-SHA1) with this key: longTermKey() or shortTermKey(). */
  integrityKey?: Buffer
  /** Adds FINGERPRINT as the last attribute. */
  fingerprint?: boolean
  /** Byte used to pad attribute values (0; RFC 5769's vectors use 0x20 in places). */
  padByte?: number
}

export function encodeMessage(
  msg: Pick<StunMessage, 'type' | 'transactionId' | 'attributes'>,
  opts: EncodeOptions = {},
): Buffer {
  if (msg.transactionId.length !== TRANSACTION_ID_LENGTH) {
    throw new RangeError(`transaction id is ${msg.transactionId.length} bytes, expected 12`)
  }
  if (msg.type < 0 || msg.type > 0x3fff)
    throw new RangeError(`message type 0x${hex4(msg.type)} needs more than 14 bits`)
  const parts = msg.attributes.map((a) => encodeAttribute(a, opts.padByte ?? 0))
  let body = Buffer.concat(parts)
  if (opts.integrityKey) {
    const hmac = createHmac('sha1', opts.integrityKey)
      .update(header(msg, body.length + 4 + INTEGRITY_LENGTH))
      .update(body)
      .digest()
    body = Buffer.concat([body, encodeAttribute({ type: Attr.MESSAGE_INTEGRITY, value: hmac }, 0)])
  }
  if (opts.fingerprint) {
    const crc = crc32(Buffer.concat([header(msg, body.length + 8), body]))
    body = Buffer.concat([
      body,
      encodeAttribute({ type: Attr.FINGERPRINT, value: u32((crc ^ FINGERPRINT_XOR) >>> 0) }, 0),
    ])
  }
  return Buffer.concat([header(msg, body.length), body])
}

function header(msg: Pick<StunMessage, 'type' | 'transactionId'>, length: number): Buffer {
  if (length > 0xffff) throw new RangeError(`message attributes are ${length} bytes, at most 65535`)
  const h = Buffer.alloc(HEADER_LENGTH)
  h.writeUInt16BE(msg.type, 0)
  h.writeUInt16BE(length, 2)
  h.writeUInt32BE(MAGIC_COOKIE, 4)
  msg.transactionId.copy(h, 8)
  return h
}

function encodeAttribute(a: StunAttribute, padByte: number): Buffer {
  if (a.value.length > 0xffff) throw new RangeError(`attribute 0x${hex4(a.type)} value is longer than 65535 bytes`)
  const padded = (a.value.length + 3) & ~3
  const out = Buffer.alloc(4 + padded, padByte)
  out.writeUInt16BE(a.type, 0)
  out.writeUInt16BE(a.value.length, 2)
  a.value.copy(out, 4)
  return out
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** True when the bytes start like a STUN message (top bits 00, magic cookie), before full validation. */
export function looksLikeStun(buf: Uint8Array): boolean {
  if (buf.length < 8 || ((buf[0] as number) & 0xc0) !== 0) return false
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readUInt32BE(4) === MAGIC_COOKIE
}

export function decodeMessage(input: Uint8Array): StunMessage {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  if (buf.length < HEADER_LENGTH)
    throw new StunDecodeError(`message is ${buf.length} bytes, shorter than the 20-byte header`)
  const type = buf.readUInt16BE(0)
  if (type & 0xc000) throw new StunDecodeError(`first two bits are not zero (0x${hex4(type)}): not a STUN message`)
  const length = buf.readUInt16BE(2)
  const cookie = buf.readUInt32BE(4)
  if (cookie !== MAGIC_COOKIE) throw new StunDecodeError(`magic cookie is 0x${cookie.toString(16)}, not 0x2112a442`)
  if (length % 4 !== 0) throw new StunDecodeError(`message length ${length} is not a multiple of 4`)
  if (HEADER_LENGTH + length !== buf.length) {
    throw new StunDecodeError(`header says ${HEADER_LENGTH + length} bytes but the message has ${buf.length}`)
  }
  const raw = Buffer.from(buf)
  return { type, transactionId: raw.subarray(8, 20), attributes: decodeAttributes(raw), raw }
}

function decodeAttributes(raw: Buffer): StunAttribute[] {
  const attributes: StunAttribute[] = []
  let afterIntegrity = false
  let offset = HEADER_LENGTH
  while (offset < raw.length) {
    if (raw.length - offset < 4) throw new StunDecodeError(`truncated attribute header at byte ${offset}`)
    const type = raw.readUInt16BE(offset)
    const len = raw.readUInt16BE(offset + 2)
    const end = offset + 4 + ((len + 3) & ~3)
    if (end > raw.length) {
      throw new StunDecodeError(`attribute 0x${hex4(type)} at byte ${offset} claims ${len} bytes, past the end`)
    }
    const value = raw.subarray(offset + 4, offset + 4 + len)
    checkFixedLength(type, len)
    if (type === Attr.FINGERPRINT && end !== raw.length) {
      throw new StunDecodeError('FINGERPRINT is not the last attribute')
    }
    // RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY are ignored, except FINGERPRINT.
    if (!afterIntegrity || type === Attr.FINGERPRINT) attributes.push({ type, value, offset })
    if (type === Attr.MESSAGE_INTEGRITY) afterIntegrity = true
    offset = end
  }
  return attributes
}

function checkFixedLength(type: number, len: number): void {
  const want = type === Attr.MESSAGE_INTEGRITY ? INTEGRITY_LENGTH : type === Attr.FINGERPRINT ? 4 : undefined
  if (want !== undefined && len !== want) {
    const name = type === Attr.FINGERPRINT ? 'FINGERPRINT' : 'MESSAGE-INTEGRITY'
    throw new StunDecodeError(`${name} is ${len} bytes, expected ${want}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Reading decoded messages

export function getAttribute(msg: StunMessage, type: number): Buffer | undefined {
  return msg.attributes.find((a) => a.type === type)?.value
}

export function getString(msg: StunMessage, type: number): string | undefined {
  const v = getAttribute(msg, type)
  return v === undefined ? undefined : decodeUtf8(v, `attribute 0x${hex4(type)}`)
}

export function getErrorCode(msg: StunMessage): StunErrorCode | undefined {
  const v = getAttribute(msg, Attr.ERROR_CODE)
  return v === undefined ? undefined : decodeErrorCode(v)
}

export function getXorAddress(msg: StunMessage, type: number): TransportAddress | undefined {
  const v = getAttribute(msg, type)
  return v === undefined ? undefined : decodeXorAddress(v, msg.transactionId)
}

export function getLifetime(msg: StunMessage): number | undefined {
  const v = getAttribute(msg, Attr.LIFETIME)
  return v === undefined ? undefined : decodeLifetime(v)
}

/**
 * Checks MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to the attribute, with the header
 * length rewritten to end just after it. undefined when the message has none.
 */
export function verifyMessageIntegrity(msg: StunMessage, key: Buffer): boolean | undefined {
  const mi = msg.attributes.find((a) => a.type === Attr.MESSAGE_INTEGRITY)
  if (!mi || mi.offset === undefined || !msg.raw) return undefined
  const covered = Buffer.from(msg.raw.subarray(0, mi.offset))
  covered.writeUInt16BE(mi.offset - HEADER_LENGTH + 4 + INTEGRITY_LENGTH, 2)
  const want = createHmac('sha1', key).update(covered).digest()
  return timingSafeEqual(want, mi.value)
}

/** Checks FINGERPRINT: CRC-32 of everything before it, XOR 0x5354554E. undefined when absent. */
export function verifyFingerprint(msg: StunMessage): boolean | undefined {
  const fp = msg.attributes.find((a) => a.type === Attr.FINGERPRINT)
  if (!fp || fp.offset === undefined || !msg.raw) return undefined
  return (crc32(msg.raw.subarray(0, fp.offset)) ^ FINGERPRINT_XOR) >>> 0 === fp.value.readUInt32BE(0)
}

// ---------------------------------------------------------------------------------------------
// Stream framing (TCP/TLS): messages back to back, delimited by their own length fields

/**
 * How many bytes the frame at the start of `buf` needs in total, or undefined when fewer than
 * 4 bytes have arrived. STUN messages need 20 + length; ChannelData (first bits 01) needs
 * 4 + length padded to 4 over streams (RFC 8656 §12.5). Throws StunDecodeError for bytes
 * that are neither.
 */
export function frameLength(buf: Uint8Array): number | undefined {
  if (buf.length < 4) return undefined
  const first = (buf[0] as number) >> 6
  const length = ((buf[2] as number) << 8) | (buf[3] as number)
  if (first === 0) {
    if (length % 4 !== 0) throw new StunDecodeError(`STUN length ${length} is not a multiple of 4: stream out of sync`)
    return HEADER_LENGTH + length
  }
  if (first === 1) return 4 + ((length + 3) & ~3)
  throw new StunDecodeError(`byte 0x${(buf[0] as number).toString(16)} starts neither a STUN message nor ChannelData`)
}

export function describeType(type: number): string {
  const { method, cls } = splitMessageType(type)
  const name = Object.entries(Method).find(([, m]) => m === method)?.[0] ?? `method 0x${method.toString(16)}`
  return `${name} ${cls}`
}
