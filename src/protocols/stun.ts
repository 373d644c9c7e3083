/**
 * STUN/TURN message codec (RFC 5389/8489, RFC 5766/8656). Pure: no sockets, no clock.
 *
 * A message is a 20-byte header (type, attribute length, magic cookie, 12-byte transaction id)
 * followed by type-length-value attributes, each padded to a multiple of 4 bytes. Decoding
 * never throws anything but StunDecodeError, whatever the input.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { u32 } from './stun-attributes.js'
import {
  Attr,
  FINGERPRINT_XOR,
  HEADER_LENGTH,
  hex4,
  INTEGRITY_LENGTH,
  MAGIC_COOKIE,
  type StunAttribute,
  StunDecodeError,
  type StunMessage,
  TRANSACTION_ID_LENGTH,
} from './stun-core.js'

export * from './stun-attributes.js'
export * from './stun-core.js'

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
// Checking decoded messages

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
