/** The kinds of verdicts chatmail-filter gives, and the envelope it judges with. Pure. */

export type Direction = 'outgoing' | 'incoming'

export interface Envelope {
  /** outgoing: submitted by a logged-in user (465/587); incoming: from another server (25). */
  direction: Direction
  /** MAIL FROM, without angle brackets ('' for a bounce). */
  mailFrom: string
  rcpts: string[]
  /** The connecting client's IP address (incoming: a From of user@[IP] must come from IP). */
  clientAddr?: string
}

/** Why a message was let through. */
export type Kind =
  | 'encrypted' // PGP/MIME, structurally valid
  | 'securejoin' // the cleartext first step of a Secure-Join handshake (vc-request / vg-request)
  | 'bounce' // incoming: a delivery status notification from a mailer-daemon, sent from MAIL FROM:<>
  | 'setup-message' // outgoing: an Autocrypt Setup Message to oneself

export type Verdict =
  | { accept: true; kind: Kind }
  | { accept: false /** SMTP reply code */; code: string /** enhanced status */; status: string; reason: string }

const ENCRYPTION_NEEDED = 'Encryption Needed: this server accepts only end-to-end encrypted (OpenPGP) mail'

export function refuse(reason: string): Verdict {
  return { accept: false, code: '523', status: '5.7.1', reason: `${ENCRYPTION_NEEDED} (${reason})` }
}
export function malformed(reason: string): Verdict {
  return { accept: false, code: '554', status: '5.6.0', reason: `Malformed message: ${reason}` }
}
export function forged(reason: string): Verdict {
  return { accept: false, code: '550', status: '5.7.1', reason }
}
