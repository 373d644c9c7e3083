/**
 * STUN/TURN basics shared by the codec and the attribute values: constants, methods, attribute
 * types, the message shapes, and the message type's bit layout (RFC 8489 §5).
 */
import { randomBytes } from 'node:crypto'

export const MAGIC_COOKIE = 0x2112a442
export const HEADER_LENGTH = 20
export const TRANSACTION_ID_LENGTH = 12
export const INTEGRITY_LENGTH = 20
export const FINGERPRINT_XOR = 0x5354554e

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

export const hex4 = (n: number): string => n.toString(16).padStart(4, '0')

export function describeType(type: number): string {
  const { method, cls } = splitMessageType(type)
  const name = Object.entries(Method).find(([, m]) => m === method)?.[0] ?? `method 0x${method.toString(16)}`
  return `${name} ${cls}`
}
