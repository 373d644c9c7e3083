/**
 * Mail flow as a Delta Chat client uses it: SMTP submission with login (implicit TLS on 465,
 * as core tries first, else STARTTLS on 587), and a round trip: an OpenPGP-encrypted PGP/MIME
 * message to self, submitted over SMTP, must arrive in INBOX and decrypt intact. The OpenPGP
 * part is openpgp.js (a fresh throw-away key per run); SMTP is nodemailer's SMTPConnection.
 */
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { ImapFlow } from 'imapflow'
import type SMTPConnection from 'nodemailer/lib/smtp-connection'
import { classifySocketError } from '../../lib/socket-errors.js'
import { connectionCause, noSubmission, withCause } from '../causes.js'
import { imapClientOptions } from '../imap-session.js'
import { type CheckContext, type CheckOutcome, fail, ok, skip } from '../model.js'
import { trustingOptions } from '../tls-probe.js'

export interface SubmissionPort {
  port: number
  /** Implicit TLS (465) or STARTTLS (587). */
  secure: boolean
}
/** 465 first (as core tries), then 587; `--tls-port submission=…,submission-starttls=…` moves them. */
const submissionPorts = (ctx: CheckContext): SubmissionPort[] => [
  { port: ctx.options.tlsPorts?.submission ?? 465, secure: true },
  { port: ctx.options.tlsPorts?.['submission-starttls'] ?? 587, secure: false },
]
export const describePort = (p: SubmissionPort) => `${p.port} (${p.secure ? 'implicit TLS' : 'STARTTLS'})`

export const NO_ACCOUNT = 'no account to log in with: pass --user and --password (or CHATMAIL_USER/CHATMAIL_PASSWORD)'

export const call = <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))))

/** An SMTP connection, logged in; closed when the check's signal aborts. */
async function smtpLogin(ctx: CheckContext, p: SubmissionPort, user: string, pass: string): Promise<SMTPConnection> {
  const { default: Connection } = await import('nodemailer/lib/smtp-connection')
  const { domain, imapHost, insecure, ca, timeoutMs } = ctx.options
  const conn = new Connection({
    host: imapHost,
    port: p.port,
    secure: p.secure,
    requireTLS: !p.secure,
    ...(isIP(domain) ? {} : { servername: domain }),
    name: 'chatmail-doctor',
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    tls: { rejectUnauthorized: !insecure, ...trustingOptions(ca) },
    logger: false,
  })
  // Connection errors (refused, TLS) come as 'error' events, not through connect's callback.
  let failed: ((err: Error) => void) | undefined
  conn.on('error', (err: Error) => failed?.(err))
  const close = () => conn.close()
  ctx.signal.addEventListener('abort', close, { once: true })
  try {
    await new Promise<void>((resolve, reject) => {
      failed = reject
      conn.connect((err) => (err ? reject(err) : resolve()))
    })
    await call<boolean>((cb) => conn.login({ credentials: { user, pass } }, cb))
    return conn
  } catch (err) {
    conn.close()
    throw err
  } finally {
    ctx.signal.removeEventListener('abort', close)
  }
}

/** Tries 465, then 587 when nothing listens on 465. */
export async function submission(ctx: CheckContext, user: string, pass: string) {
  let lastErr: unknown
  for (const p of submissionPorts(ctx)) {
    try {
      return { port: p, conn: await smtpLogin(ctx, p, user, pass) }
    } catch (err) {
      lastErr = err
      if ((err as { code?: string }).code !== 'ECONNREFUSED' && !/ECONNREFUSED/.test(String(err))) break
    }
  }
  throw lastErr
}

export function smtpFailure(ctx: CheckContext, err: unknown): CheckOutcome {
  const e = err as Error & { code?: string; responseCode?: number; response?: string }
  const where = `${ctx.options.imapHost}`
  if (e.code === 'EAUTH' || e.responseCode === 535) {
    return fail(
      `SMTP submission at ${where} refused the login of ${ctx.options.user}: ${e.response ?? e.message}`,
      "postfix's submission services must authenticate against dovecot (smtpd_sasl_type = dovecot); check the account",
    )
  }
  if (/certificate|self.signed|altnames|CERT_/i.test(`${e.code ?? ''} ${e.message}`)) {
    return fail(
      `TLS to SMTP submission at ${where} failed: ${e.message}`,
      'postfix must serve the same certificate as dovecot (smtpd_tls_cert_file)',
    )
  }
  const ports = submissionPorts(ctx).map((p) => p.port)
  const failure = classifySocketError(err).failure
  const closed = failure === 'refused' || failure === 'timeout' || failure === 'unreachable'
  return withCause(
    fail(
      `no SMTP submission at ${where} on ${ports.join(' or ')}: ${e.response ?? e.message}`,
      'postfix must listen on 465 (smtps) and/or 587 (submission) with SASL auth: check master.cf and systemctl status postfix',
    ),
    closed
      ? noSubmission(
          ctx.options.imapHost,
          [...ports].sort((x, y) => x - y),
        )
      : connectionCause(err, ctx.options.imapHost, ports[0] ?? 465),
  )
}

export async function submissionCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const { user, password } = ctx.options
  if (!user || !password) return skip(NO_ACCOUNT)
  try {
    const { port, conn } = await submission(ctx, user, password)
    conn.quit()
    return ok(`logged in as ${user} at ${ctx.options.imapHost}:${describePort(port)}`)
  } catch (err) {
    return smtpFailure(ctx, err)
  }
}

/** A PGP/MIME (RFC 3156) message, as Delta Chat sends them. Pure. */
export function pgpMimeMessage(o: {
  from: string
  to: string
  messageId: string
  date: Date
  armored: string
}): string {
  const boundary = `chatmail-doctor-${randomBytes(9).toString('base64url')}`
  return [
    `From: <${o.from}>`,
    `To: <${o.to}>`,
    'Subject: [...]',
    `Date: ${o.date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${o.messageId}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: application/pgp-encrypted',
    'Content-Description: PGP/MIME version identification',
    '',
    'Version: 1',
    '',
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    'Content-Description: OpenPGP encrypted message',
    'Content-Disposition: inline; filename="encrypted.asc"',
    '',
    ...o.armored.trimEnd().split(/\r?\n/),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n')
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function roundtripCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const { user, password } = ctx.options
  if (!user || !password) return skip(NO_ACCOUNT)
  const openpgp = await import('openpgp')
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    userIDs: [{ email: user.replace(/^(.*)@\[(.*)\]$/, '$1@$2') }],
    format: 'object',
  })
  const token = randomBytes(12).toString('base64url')
  const text = `chatmail doctor round trip ${token}`
  const armored = await openpgp.encrypt({
    message: await openpgp.createMessage({ text }),
    encryptionKeys: publicKey,
    signingKeys: privateKey,
  })
  const host = isIP(ctx.options.domain) ? `[${ctx.options.domain}]` : ctx.options.domain
  const messageId = `${token}@${host.replace(/[[\]]/g, '')}`
  const imap = new ImapFlow(imapClientOptions(ctx.options, user, password))
  imap.on('error', () => undefined)
  const closeImap = () => imap.close()
  ctx.signal.addEventListener('abort', closeImap, { once: true })
  try {
    // IMAP and SMTP come up together; the clock starts when the server has accepted the message.
    const [sent] = await Promise.all([
      submission(ctx, user, password).then(async ({ port, conn }) => {
        try {
          await call((cb) =>
            conn.send(
              { from: user, to: [user] },
              pgpMimeMessage({ from: user, to: user, messageId, date: new Date(), armored }),
              cb,
            ),
          )
          return { port, at: performance.now() }
        } finally {
          conn.quit()
        }
      }),
      imap
        .connect()
        .then(() => imap.mailboxOpen('INBOX'))
        .catch((err) => {
          throw Object.assign(err as Error, { stage: 'imap' })
        }),
    ])
    let uid: number | undefined
    while (uid === undefined) {
      const found = await imap.search({ header: { 'message-id': messageId } }, { uid: true })
      if (found && found.length > 0) uid = found[0]
      else {
        await sleep(25)
        await imap.noop()
      }
    }
    const ms = Math.round(performance.now() - sent.at)
    const msg = await imap.fetchOne(String(uid), { source: true }, { uid: true })
    const source = msg ? (msg.source?.toString('utf8') ?? '') : ''
    const block = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(source)?.[0]
    let intact = false
    if (block) {
      const { data } = await openpgp.decrypt({
        message: await openpgp.readMessage({ armoredMessage: block }),
        decryptionKeys: privateKey,
      })
      intact = String(data).includes(token)
    }
    await imap.messageDelete(String(uid), { uid: true }).catch(() => undefined)
    if (!intact) {
      return fail(
        `the message arrived after ${ms} ms but does not decrypt to what was sent: the server changed it`,
        'something between postfix and dovecot rewrites message bodies (a content filter?): Delta Chat messages must arrive byte-exact',
      )
    }
    return ok(
      `an OpenPGP-encrypted message to self arrived in INBOX ${ms} ms after submission on ${describePort(sent.port)}, and decrypted intact`,
    )
  } catch (err) {
    const e = err as Error & { stage?: string; responseText?: string }
    if (ctx.signal.aborted) {
      return fail(
        `an encrypted message to self did not arrive in INBOX within ${ctx.timeoutMs} ms`,
        'check the path postfix → dovecot LMTP (journalctl -u postfix -u dovecot) and the mail queue (postqueue -p)',
      )
    }
    if (e.stage === 'imap')
      return fail(`IMAP for the round trip failed: ${e.responseText ?? e.message}`, 'see imap.login')
    const refused = (e as { response?: string }).response
    if (refused) {
      return fail(
        `the server refused the encrypted message to self: ${refused}`,
        'postfix must accept mail from an authenticated user to its own address (smtpd_sender_login_maps, virtual_mailbox_domains)',
      )
    }
    return smtpFailure(ctx, err)
  } finally {
    ctx.signal.removeEventListener('abort', closeImap)
    imap.close()
  }
}
