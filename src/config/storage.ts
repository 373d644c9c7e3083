/**
 * [mail] and [accounts] values of the storage limits: sizes, and the ages after which the daily
 * expiry deletes messages and accounts (chatmail relays' defaults). Pure.
 */
import * as v from 'valibot'
import { parseDuration } from '../protocols/duration.js'
import { checkValue } from './values.js'

/** chatmail relays' defaults: messages go after 20 days, large ones (over 200 kB) after 7. */
export const DEFAULT_EXPIRY = { deleteMailsAfterSeconds: 20 * 86400, deleteLargeAfterSeconds: 7 * 86400 }
/** "Large" for mail.delete_large_after, in bytes (chatmail relays' figure). */
export const LARGE_MESSAGE_BYTES = 200_000

/**
 * An age after which the expiry timer deletes something: whole days at least, so that a bare
 * number (chatmail.ini counts days, a duration here counts seconds) cannot delete everything.
 */
export const days = (what: string) =>
  v.pipe(
    v.string(`${what} must be a duration of days such as "20d"`),
    v.check((s) => checkValue(s) === undefined, `${what} must not contain control characters`),
    v.check((s) => {
      const d = parseDuration(s)
      return d.ok && d.seconds >= 86400
    }, `${what} must be a duration of at least 1d such as "20d" (at most 365d)`),
  )

/** A size such as "500M" in bytes (K, M, G, T are powers of 1024). */
export function sizeBytes(text: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(text)
  if (!m) return Number.NaN
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1
  return Number(m[1]) * unit
}

/** Seconds of a duration the schema checked. */
export function daysSeconds(text: string): number {
  const d = parseDuration(text)
  return d.ok ? d.seconds : 86400
}

/** A mailbox must hold at least 1M and the largest message. */
export function checkMailSizes(maxMessageSize: number, maxMailboxSize: string): void {
  const mailbox = sizeBytes(maxMailboxSize)
  if (mailbox < 1024 ** 2) {
    throw new Error(`mail.max_mailbox_size = "${maxMailboxSize}" is below 1M: no mailbox could hold a message`)
  }
  if (maxMessageSize > mailbox) {
    throw new Error(
      `mail.max_message_size (${maxMessageSize} bytes) is above mail.max_mailbox_size ("${maxMailboxSize}"): such a message could never be delivered`,
    )
  }
}
