/**
 * chatmail.toml's [mail]: message and mailbox sizes, the operator's address, recipients and send
 * rate per user, and when the daily expiry deletes messages. The schema and the resolved values.
 */
import * as v from 'valibot'
import { count, size, text } from './fields.js'
import { checkMailSizes, days, daysSeconds } from './storage.js'
import { emailAddress } from './values.js'

export const DEFAULT_MAX_SMTP_RECIPIENTS = 1000

export const MailSection = v.optional(
  v.strictObject(
    {
      max_message_size: v.optional(
        v.pipe(v.number('mail.max_message_size must be a number of bytes'), v.integer(), v.minValue(1024)),
        31457280,
      ),
      max_mailbox_size: v.optional(size('mail.max_mailbox_size'), '500M'),
      admin: v.optional(text('mail.admin', [emailAddress])),
      comment: v.optional(
        v.pipe(text('mail.comment'), v.maxLength(200, 'mail.comment must be at most 200 characters')),
        '',
      ),
      max_smtp_recipients: v.optional(count('mail.max_smtp_recipients', 1, 100_000), DEFAULT_MAX_SMTP_RECIPIENTS),
      delete_mails_after: v.optional(days('mail.delete_mails_after'), '20d'),
      delete_large_after: v.optional(days('mail.delete_large_after'), '7d'),
      max_user_send_per_minute: v.optional(count('mail.max_user_send_per_minute', 1, 1_000_000), 60),
      max_user_send_burst: v.optional(count('mail.max_user_send_burst', 1, 1_000_000), 10),
    },
    'allowed keys in [mail]: max_message_size, max_mailbox_size, admin, comment, max_smtp_recipients, delete_mails_after, delete_large_after, max_user_send_per_minute, max_user_send_burst',
  ),
  {},
)

export interface MailConfig {
  maxMessageSize: number
  maxMailboxSize: string
  /** The operator's address, served as /shared/admin (mailto:). */
  admin?: string
  comment: string
  maxSmtpRecipients: number
  /** Messages a logged-in user may send a minute (chatmail-filter's token bucket), and its size. */
  maxUserSendPerMinute: number
  maxUserSendBurst: number
  /** The daily expiry deletes messages older than this, and those over LARGE_MESSAGE_BYTES older than that. */
  deleteMailsAfterSeconds: number
  deleteLargeAfterSeconds: number
}

export function resolveMail(m: v.InferOutput<typeof MailSection>): MailConfig {
  checkMailSizes(m.max_message_size, m.max_mailbox_size)
  return {
    maxMessageSize: m.max_message_size,
    maxMailboxSize: m.max_mailbox_size,
    ...(m.admin ? { admin: m.admin } : {}),
    comment: m.comment,
    maxSmtpRecipients: m.max_smtp_recipients,
    maxUserSendPerMinute: m.max_user_send_per_minute,
    maxUserSendBurst: m.max_user_send_burst,
    deleteMailsAfterSeconds: daysSeconds(m.delete_mails_after),
    deleteLargeAfterSeconds: daysSeconds(m.delete_large_after),
  }
}
