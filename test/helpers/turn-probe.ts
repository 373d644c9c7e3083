/**
 * A minimal TURN client for probing what a (loopback) coturn permits, over one TCP connection:
 * Allocate with any REQUESTED-TRANSPORT (6 = TCP, RFC 6062) and address family (RFC 6156), then
 * CreatePermission for any peer. Nothing is ever sent to a peer: a permission only installs a
 * rule on the server. Built on the project's STUN codec; the real client is src/turn/.
 */
import { connect, type Socket } from 'node:net'
import {
  Attr,
  attr,
  decodeMessage,
  encodeMessage,
  frameLength,
  getErrorCode,
  getString,
  getXorAddress,
  longTermKey,
  Method,
  messageType,
  newTransactionId,
  type StunAttribute,
  type StunMessage,
  type TransportAddress,
} from '../../src/protocols/stun.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'

export const TRANSPORT_TCP = 6

type Build = (transactionId: Buffer) => StunAttribute[]

export interface ProbeAnswer {
  ok: boolean
  /** The error code when not ok. */
  code?: number
  reason?: string
  relayed?: TransportAddress
}

export class TurnProbe {
  private buffer = Buffer.alloc(0)
  private waiting: ((msg: StunMessage) => void) | undefined
  private realm = ''
  private nonce = ''
  private key: Buffer | undefined
  private readonly username: string

  private constructor(
    private readonly socket: Socket,
    secret: string,
    nowMs: number,
  ) {
    const cred = mintTurnCredential(secret, { ttlSeconds: 600, nowMs })
    this.username = cred.username
    this.password = cred.password
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      for (;;) {
        const len = frameLength(this.buffer)
        if (len === undefined || this.buffer.length < len) return
        const frame = this.buffer.subarray(0, len)
        this.buffer = this.buffer.subarray(len)
        this.waiting?.(decodeMessage(frame))
      }
    })
  }
  private readonly password: string

  /** `nowMs` fixes the minted username (= expiry): probes opened with the same one share it. */
  static open(host: string, port: number, secret: string, nowMs = Date.now()): Promise<TurnProbe> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port })
      socket.once('connect', () => resolve(new TurnProbe(socket, secret, nowMs)))
      socket.once('error', reject)
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private exchange(method: number, build: Build): Promise<StunMessage> {
    const transactionId = newTransactionId()
    const attributes = build(transactionId)
    const auth = this.key
      ? [attr.username(this.username), attr.realm(this.realm), attr.nonce(this.nonce)]
      : ([] as StunAttribute[])
    const bytes = encodeMessage(
      { type: messageType(method, 'request'), transactionId, attributes: [...attributes, ...auth] },
      this.key ? { integrityKey: this.key, fingerprint: true } : { fingerprint: true },
    )
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer from the TURN server within 5 s')), 5000)
      this.waiting = (msg) => {
        if (!msg.transactionId.equals(transactionId)) return
        clearTimeout(timer)
        this.waiting = undefined
        resolve(msg)
      }
      this.socket.write(bytes)
    })
  }

  /** One request, authenticated after the server's 401 (or a 438 stale nonce). */
  private async request(method: number, build: Build): Promise<ProbeAnswer> {
    let msg = await this.exchange(method, build)
    for (let round = 0; round < 2; round++) {
      const code = getErrorCode(msg)?.code
      if (code !== 401 && code !== 438) break
      this.realm = getString(msg, Attr.REALM) ?? this.realm
      this.nonce = getString(msg, Attr.NONCE) ?? this.nonce
      this.key = longTermKey(this.username, this.realm, this.password)
      msg = await this.exchange(method, build)
    }
    const error = getErrorCode(msg)
    if (error) return { ok: false, code: error.code, reason: error.reason }
    const relayed = getXorAddress(msg, Attr.XOR_RELAYED_ADDRESS)
    return { ok: true, ...(relayed ? { relayed } : {}) }
  }

  allocate(o: { transport?: number; family?: 4 | 6 } = {}): Promise<ProbeAnswer> {
    const attributes = [attr.requestedTransport(o.transport), attr.lifetime(60)]
    if (o.family === 6) attributes.push({ type: Attr.REQUESTED_ADDRESS_FAMILY, value: Buffer.from([2, 0, 0, 0]) })
    return this.request(Method.Allocate, () => attributes)
  }

  /** Asks for a permission towards `address` (no packet goes there). */
  createPermission(address: string): Promise<ProbeAnswer> {
    return this.request(Method.CreatePermission, (transactionId) => [
      attr.xorAddress(Attr.XOR_PEER_ADDRESS, { address, port: 9 }, transactionId),
    ])
  }
}
