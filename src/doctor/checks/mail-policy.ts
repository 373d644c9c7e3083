/**
 * The chatmail policy as a client meets it: `mail.rejects-unencrypted` submits a plaintext
 * message to self and expects a permanent refusal (5xx) at SMTP time. A chatmail relay accepts only
 * OpenPGP-encrypted mail (with a few cleartext exceptions, none of which this message is).
 */
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { ImapFlow } from 'imapflow'
import { imapClientOptions } from '../imap-session.js'
import { type CheckContext, type CheckOutcome, fail, ok, skip, warn } from '../model.js'
import { call, describePort, NO_ACCOUNT, sleep, smtpFailure, submission } from './mail-flow.js'

/** A plain text message, as a client without encryption sends it. Pure. */
export function plaintextMessage(o: { from: string; to: string; messageId: string; date: Date }): string {
  return [
    `From: <${o.from}>`,
    `To: <${o.to}>`,
    'Subject: chatmail doctor: unencrypted',
    `Date: ${o.date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${o.messageId}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'This message is not encrypted. A chatmail server must refuse it; `chatmail doctor` sent it to check that.',
    '',
  ].join('\r\n')
}

/** The SMTP reply of a refused send, when the server gave one. */
function replyOf(err: unknown): { code: number; text: string } | undefined {
  const e = err as { responseCode?: number; response?: string }
  return typeof e.responseCode === 'number' && e.responseCode >= 400
    ? { code: e.responseCode, text: e.response ?? String(e.responseCode) }
    : undefined
}

/**
 * An accepted plaintext message must not stay in the doctor's INBOX: look for it (for at most
 * `withinMs`) and delete it. Best effort: what the check reports does not depend on it.
 */
async function removeArrived(ctx: CheckContext, user: string, password: string, messageId: string, withinMs: number) {
  const imap = new ImapFlow(imapClientOptions(ctx.options, user, password))
  imap.on('error', () => undefined)
  const close = () => imap.close()
  ctx.signal.addEventListener('abort', close, { once: true })
  try {
    await imap.connect()
    await imap.mailboxOpen('INBOX')
    const until = performance.now() + withinMs
    while (performance.now() < until && !ctx.signal.aborted) {
      const found = await imap.search({ header: { 'message-id': messageId } }, { uid: true })
      if (found && found.length > 0) {
        await imap.messageDelete(found.join(','), { uid: true })
        return
      }
      await sleep(50)
      await imap.noop()
    }
  } catch {
    // best effort
  } finally {
    ctx.signal.removeEventListener('abort', close)
    imap.close()
  }
}

export async function rejectsUnencryptedCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const { user, password, domain } = ctx.options
  if (!user || !password) return skip(NO_ACCOUNT)
  const token = randomBytes(12).toString('base64url')
  const messageId = `${token}@${isIP(domain) ? domain : domain.toLowerCase()}`
  let session: Awaited<ReturnType<typeof submission>>
  try {
    session = await submission(ctx, user, password)
  } catch (err) {
    return smtpFailure(ctx, err)
  }
  const { port, conn } = session
  const where = describePort(port)
  try {
    await call((cb) =>
      conn.send(
        { from: user, to: [user] },
        plaintextMessage({ from: user, to: user, messageId, date: new Date() }),
        cb,
      ),
    )
  } catch (err) {
    const reply = replyOf(err)
    if (reply && reply.code >= 500) {
      return ok(`a plaintext message to self was refused at submission on ${where}: ${reply.text}`)
    }
    if (reply) {
      return fail(
        `a plaintext message to self got a temporary error at submission on ${where}, not a refusal: ${reply.text}`,
        'a 4xx answer at the end of a message usually means the encryption filter is down (postfix defers): check it (systemctl status chatmail-filter, journalctl -u postfix)',
      )
    }
    return smtpFailure(ctx, err)
  } finally {
    conn.quit()
  }
  await removeArrived(ctx, user, password, messageId, Math.min(2000, ctx.timeoutMs / 2))
  const detail = `a plaintext message to self was accepted at submission on ${where}: the server takes unencrypted mail, which a chatmail relay refuses`
  const hint =
    'the server must refuse mail that is not OpenPGP-encrypted at SMTP time (chatmail deploy host installs such a filter)'
  // Delta Chat still works with a server that takes plaintext: ours must not, others are told.
  return ctx.options.deployed ? fail(detail, hint) : warn(detail, hint)
}
