/** STUN attribute values: building them, reading them back (malformed ones are StunDecodeError). */
import { isIP } from 'node:net'
import {
  Attr,
  ERROR_REASONS,
  hex4,
  MAGIC_COOKIE,
  type StunAttribute,
  StunDecodeError,
  type StunErrorCode,
  type StunMessage,
  TRANSPORT_UDP,
  type TransportAddress,
} from './stun-core.js'

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

export function u32(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${n} is not an unsigned 32-bit integer`)
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

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
