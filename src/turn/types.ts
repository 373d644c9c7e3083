/** The TURN client's types and its one error class. */
import type { PeerTls } from '../lib/tls.js'
import type { TransportAddress } from '../protocols/stun.js'

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
  tls?: PeerTls
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

export interface Credentials {
  username: string
  password: string
}
