/** What chatmail-metadata answers for each IMAP METADATA entry. Pure: the secret and clock are arguments. */
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
}

function turnValue(answers: Answers, port: number, secret: string | undefined, nowMs: number): string | undefined {
  if (secret === undefined) return undefined
  const cred = mintTurnCredential(secret, { ttlSeconds: answers.ttlSeconds, nowMs })
  return formatTurnMetadata(answers.turnHost, port, cred.username, cred.password)
}

/** The value of an IMAP entry, or undefined (not found). TURN entries need the secret. */
export function answer(entry: string, answers: Answers, secret: string | undefined, nowMs: number): string | undefined {
  switch (entry) {
    case METADATA_KEYS.irohrelay:
      return answers.irohRelayUrl
    case METADATA_KEYS.turn:
      return turnValue(answers, answers.turnPort, secret, nowMs)
    case METADATA_KEYS.turns:
      return answers.turnsPort === undefined ? undefined : turnValue(answers, answers.turnsPort, secret, nowMs)
    default:
      return undefined
  }
}
