/**
 * The Allocate / Refresh exchange of RFC 8656 over one connection: the 401 challenge, the
 * authenticated Allocate (once more on a stale nonce), and the release with LIFETIME=0. An
 * allocation kept open (`allocate({ keep: true })`) takes further authenticated requests
 * (CreatePermission) and indications (Send) until `release()`.
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
  /** The credentials' key, realm and nonce once an authenticated request succeeded. */
  private auth: Auth | undefined
  constructor(
    private readonly conn: Connection,
    private signal: AbortSignal,
    private creds: Credentials,
  ) {}

  /** `keep`: the allocation stays open (no release) for `request`, `indicate` and `release`. */
  async allocate(o: { keep?: boolean } = {}): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    return this.finish(await this.challengeFirst(), o.keep ?? false)
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

  private async finish(first: StunMessage, keep = false): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    const allocateAttrs = allocateAttributes()
    if (isSuccess(first)) return this.allocated(first, undefined, keep)
    const challenge = this.challenge(first)
    let auth = this.authFrom(challenge)
    let res = await this.transact(Method.Allocate, allocateAttrs, auth)
    if (errorCode(res) === 438) {
      auth = this.authFrom(res)
      res = await this.transact(Method.Allocate, allocateAttrs, auth)
    }
    if (!isSuccess(res)) throw this.rejected(res, 'Allocate', true)
    return this.allocated(res, auth, keep)
  }

  private async allocated(
    res: StunMessage,
    auth: Auth | undefined,
    keep: boolean,
  ): Promise<Omit<AllocateResult, 'tls' | 'server'>> {
    this.auth = auth
    const relayed = getXorAddress(res, Attr.XOR_RELAYED_ADDRESS)
    if (!relayed) throw new TurnError('protocol', 'Allocate success without XOR-RELAYED-ADDRESS')
    const mapped = getXorAddress(res, Attr.XOR_MAPPED_ADDRESS)
    const software = getString(res, Attr.SOFTWARE)
    const lifetime = getLifetime(res) ?? 600
    const released = keep ? false : await this.release()
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
  async release(): Promise<boolean> {
    try {
      return isSuccess(await this.authenticated(Method.Refresh, [attr.lifetime(0)]))
    } catch {
      return false
    }
  }

  /** An authenticated request on the open allocation (once more on a stale nonce); an error answer throws. */
  async request(method: number, attributes: (transactionId: Buffer) => StunAttribute[], what: string) {
    const res = await this.authenticated(method, attributes)
    if (!isSuccess(res)) throw this.rejected(res, what, true)
    return res
  }

  /** An indication (Send): no answer, no MESSAGE-INTEGRITY (RFC 8656 §11.1). */
  indicate(method: number, attributes: (transactionId: Buffer) => StunAttribute[]): void {
    const transactionId = newTransactionId()
    const type = messageType(method, 'indication')
    this.conn.send(encodeMessage({ type, transactionId, attributes: attributes(transactionId) }, { fingerprint: true }))
  }

  private async authenticated(
    method: number,
    attributes: StunAttribute[] | ((transactionId: Buffer) => StunAttribute[]),
  ): Promise<StunMessage> {
    let res = await this.transact(method, attributes, this.auth)
    if (this.auth && errorCode(res) === 438) {
      this.auth = this.authFrom(res)
      res = await this.transact(method, attributes, this.auth)
    }
    return res
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

  private async transact(
    method: number,
    attrs: StunAttribute[] | ((transactionId: Buffer) => StunAttribute[]),
    auth?: Auth,
  ): Promise<StunMessage> {
    const transactionId = newTransactionId()
    const attributes = typeof attrs === 'function' ? attrs(transactionId) : attrs
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
