/**
 * What chatmail-metadata answers for each IMAP METADATA entry. Pure: the secret and clock are arguments
 * (TURN values are memoized per second, which changes no answer).
 */
import { formatTurnMetadata, METADATA_KEYS } from '../../protocols/metadata-values.js'
import { mintTurnCredential } from '../../protocols/turn-rest.js'

export interface Answers {
  turnHost: string
  turnPort: number
  /** The TURN-over-TLS port for `/turns`; absent: that key is not found. */
  turnsPort?: number | undefined
  ttlSeconds: number
  /** Absent: `/irohrelay` is not found. */
  irohRelayUrl?: string | undefined
  /** `/shared/vendor/deltachat/maxsmtprecipients`: recipients per message. Absent: not found. */
  maxSmtpRecipients?: number | undefined
}

/**
 * The last value minted for each port. A credential depends only on the secret, the host, the port,
 * the TTL and the current Unix second, so every lookup within one second gets the same value:
 * minting it once per second (not per lookup) saves an HMAC per lookup without changing any answer.
 */
interface Minted {
  secret: string
  host: string
  ttlSeconds: number
  second: number
  value: string
}
const minted = new Map<number, Minted>()
/** Ports are from the config (two); the bound only guards callers that pass many. */
const MAX_MINTED = 8

function turnValue(answers: Answers, port: number, secret: string | undefined, nowMs: number): string | undefined {
  if (secret === undefined) return undefined
  const second = Math.floor(nowMs / 1000)
  const last = minted.get(port)
  if (
    last !== undefined &&
    last.second === second &&
    last.secret === secret &&
    last.host === answers.turnHost &&
    last.ttlSeconds === answers.ttlSeconds
  ) {
    return last.value
  }
  const cred = mintTurnCredential(secret, { ttlSeconds: answers.ttlSeconds, nowMs })
  const value = formatTurnMetadata(answers.turnHost, port, cred.username, cred.password)
  if (last === undefined && minted.size >= MAX_MINTED) minted.clear()
  minted.set(port, { secret, host: answers.turnHost, ttlSeconds: answers.ttlSeconds, second, value })
  return value
}

/** The value of an IMAP entry, or undefined (not found). TURN entries need the secret. */
export function answer(entry: string, answers: Answers, secret: string | undefined, nowMs: number): string | undefined {
  switch (entry) {
    case METADATA_KEYS.irohrelay:
      return answers.irohRelayUrl
    case METADATA_KEYS.turn:
      return turnValue(answers, answers.turnPort, secret, nowMs)
    case METADATA_KEYS.maxsmtprecipients:
      return answers.maxSmtpRecipients === undefined ? undefined : String(answers.maxSmtpRecipients)
    case METADATA_KEYS.turns:
      return answers.turnsPort === undefined ? undefined : turnValue(answers, answers.turnsPort, secret, nowMs)
    default:
      return undefined
  }
}
