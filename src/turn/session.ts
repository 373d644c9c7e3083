/**
 * The Allocate / Refresh exchange of RFC 8656 over one connection: the 401 challenge, the
 * authenticated Allocate (once more on a stale nonce), and the release with LIFETIME=0.
 */
import {
  Attr,
  attr,
  describeType,
  encodeMessage,
  getErrorCode,
  getLifetime,
  getString,
  getXorAddress,
  longTermKey,
  Method,
  messageType,
  newTransactionId,
  type StunAttribute,
  type StunMessage,
  splitMessageType,
  verifyMessageIntegrity,
} from '../protocols/stun.js'
import type { Connection } from './connection.js'
import { type AllocateResult, type Credentials, TurnError } from './types.js'

const SOFTWARE = 'chatmail doctor'
/** RFC 8489 §6.2.1: initial retransmission timeout over UDP, doubled on each retransmission. */
const INITIAL_RTO_MS = 500

interface Auth {
  realm: string
  nonce: string
  key: Buffer
}

const allocateAttributes = (): StunAttribute[] => [attr.requestedTransport(), attr.software(SOFTWARE)]

export class Session {
  private rtts = 0
  constructor(
    private readonly conn: Connection,
    private signal: AbortSignal,
    private creds: Credentials,
  ) {}

  async allocate(): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    return this.finish(await this.challengeFirst())
  }

  /** The unauthenticated Allocate; its answer is normally 401 with REALM and NONCE. */
  challengeFirst(): Promise<StunMessage> {
    return this.transact(Method.Allocate, allocateAttributes())
  }

  /** Goes on after `challengeFirst` with credentials learnt since, under a new signal. */
  continueWith(
    first: StunMessage,
    creds: Credentials,
    signal: AbortSignal,
  ): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    this.creds = creds
    this.signal = signal
    return this.finish(first)
  }

  private async finish(first: StunMessage): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    const allocateAttrs = allocateAttributes()
    if (isSuccess(first)) return this.allocated(first, undefined)
    const challenge = this.challenge(first)
    let auth = this.authFrom(challenge)
    let res = await this.transact(Method.Allocate, allocateAttrs, auth)
    if (errorCode(res) === 438) {
      auth = this.authFrom(res)
      res = await this.transact(Method.Allocate, allocateAttrs, auth)
    }
    if (!isSuccess(res)) throw this.rejected(res, 'Allocate', true)
    return this.allocated(res, auth)
  }

  private async allocated(res: StunMessage, auth: Auth | undefined): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    const relayed = getXorAddress(res, Attr.XOR_RELAYED_ADDRESS)
    if (!relayed) throw new TurnError('protocol', 'Allocate success without XOR-RELAYED-ADDRESS')
    const mapped = getXorAddress(res, Attr.XOR_MAPPED_ADDRESS)
    const software = getString(res, Attr.SOFTWARE)
    const lifetime = getLifetime(res) ?? 600
    const released = await this.release(auth)
    return {
      relayed,
      ...(mapped ? { mapped } : {}),
      lifetime,
      realm: auth?.realm ?? '',
      ...(software ? { software } : {}),
      released,
      rtts: this.rtts,
    }
  }

  /** Refresh with LIFETIME=0; best effort: a failure leaves the allocation to expire. */
  private async release(auth: Auth | undefined): Promise<boolean> {
    try {
      let res = await this.transact(Method.Refresh, [attr.lifetime(0)], auth)
      if (auth && errorCode(res) === 438)
        res = await this.transact(Method.Refresh, [attr.lifetime(0)], this.authFrom(res))
      return isSuccess(res)
    } catch {
      return false
    }
  }

  /** The first answer must be 401 with REALM and NONCE. */
  private challenge(res: StunMessage): StunMessage {
    const code = errorCode(res)
    if (code !== 401) throw this.rejected(res, 'Allocate', false)
    return res
  }

  private authFrom(res: StunMessage): Auth {
    const realm = getString(res, Attr.REALM)
    const nonce = getString(res, Attr.NONCE)
    if (realm === undefined || nonce === undefined) {
      throw new TurnError('protocol', `${errorCode(res)} response without ${realm === undefined ? 'REALM' : 'NONCE'}`)
    }
    return { realm, nonce, key: longTermKey(this.creds.username, realm, this.creds.password) }
  }

  private rejected(res: StunMessage, what: string, authenticated: boolean): TurnError {
    const err = getErrorCode(res)
    if (!err) return new TurnError('protocol', `unexpected ${describeType(res.type)} to ${what}`)
    const text = `${what} refused: ${err.code} ${err.reason || '(no reason)'}`
    if ((err.code === 401 && authenticated) || err.code === 441) return new TurnError('auth', text, err.code)
    if (err.code === 438) return new TurnError('stale-nonce', `${text} (twice)`, err.code)
    return new TurnError('server', text, err.code)
  }

  private async transact(method: number, attributes: StunAttribute[], auth?: Auth): Promise<StunMessage> {
    const transactionId = newTransactionId()
    const authAttrs = auth ? [attr.username(this.creds.username), attr.realm(auth.realm), attr.nonce(auth.nonce)] : []
    const request = encodeMessage(
      { type: messageType(method, 'request'), transactionId, attributes: [...attributes, ...authAttrs] },
      { ...(auth ? { integrityKey: auth.key } : {}), fingerprint: true },
    )
    const res = await this.exchange(request, transactionId)
    this.rtts++
    checkResponse(res, method, auth)
    return res
  }

  /** Sends, and over UDP retransmits with a doubling timeout, until the response or the deadline. */
  private async exchange(request: Buffer, transactionId: Buffer): Promise<StunMessage> {
    const waiting = this.conn.response(transactionId, this.signal)
    this.conn.send(request)
    if (this.conn.reliable) return waiting
    let rto = INITIAL_RTO_MS
    let timer: NodeJS.Timeout | undefined
    const retransmit = () => {
      this.conn.send(request)
      rto *= 2
      timer = setTimeout(retransmit, rto)
    }
    timer = setTimeout(retransmit, rto)
    try {
      return await waiting
    } finally {
      clearTimeout(timer)
    }
  }
}

function isSuccess(res: StunMessage): boolean {
  return splitMessageType(res.type).cls === 'success'
}

function errorCode(res: StunMessage): number | undefined {
  return getErrorCode(res)?.code
}

/** The response must be to the method asked, and signed with our key when it carries a signature. */
function checkResponse(res: StunMessage, method: number, auth: Auth | undefined): void {
  const { method: got, cls } = splitMessageType(res.type)
  if (got !== method || (cls !== 'success' && cls !== 'error')) {
    throw new TurnError(
      'protocol',
      `expected a response to ${describeType(messageType(method, 'request'))}, got ${describeType(res.type)}`,
    )
  }
  if (auth && isSuccess(res) && verifyMessageIntegrity(res, auth.key) === false) {
    throw new TurnError(
      'protocol',
      `${describeType(res.type)} has a MESSAGE-INTEGRITY that does not verify with our key`,
    )
  }
}
