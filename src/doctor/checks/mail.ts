/**
 * The mail group: what a Delta Chat client needs to get an account and exchange messages.
 * `imap.xchatmail` (the capability that makes core treat the server as a chatmail relay),
 * `mail.autoconfig` (the XML core reads first), `mail.signup` (the /new endpoint; an account is
 * created only with --signup), `mail.submission` (SMTP submission with login) and
 * `mail.roundtrip` (an OpenPGP-encrypted message to self arrives in INBOX) and
 * `mail.rejects-unencrypted` (a plaintext one is refused at submission).
 */
import { request } from 'node:https'
import { isIP } from 'node:net'
import { ImapFlow } from 'imapflow'
import { classifySocketError } from '../../lib/socket-errors.js'
import { type AutoconfigServer, parseAutoconfig } from '../../protocols/autoconfig.js'
import { connectionCause, unresolvedHint, withCause } from '../causes.js'
import { imapClientOptions } from '../imap-session.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'
import { trustingOptions } from '../tls-probe.js'
import { roundtripCheck, submissionCheck } from './mail-flow.js'
import { rejectsUnencryptedCheck } from './mail-policy.js'

export const AUTOCONFIG_PATH = '/.well-known/autoconfig/mail/config-v1.1.xml'
const MAX_BODY = 256 * 1024

/** 443, or `--tls-port https=PORT`. */
const httpsPort = (ctx: CheckContext) => ctx.options.tlsPorts?.https ?? 443

export interface HttpsAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTPS request to the server (imapHost, with the domain as SNI and Host), trusting what the doctor trusts. */
export function httpsToServer(ctx: CheckContext, method: 'GET' | 'POST', path: string): Promise<HttpsAnswer> {
  const { domain, imapHost, insecure, ca } = ctx.options
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: imapHost,
        port: httpsPort(ctx),
        method,
        path,
        headers: {
          host: domain,
          'user-agent': 'chatmail-doctor',
          ...(method === 'POST' ? { 'content-length': 0 } : {}),
        },
        ...(isIP(domain) ? {} : { servername: domain }),
        rejectUnauthorized: !insecure,
        ...trustingOptions(ca),
        signal: ctx.signal,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size <= MAX_BODY) chunks.push(c)
        })
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/**
 * When nothing answers HTTPS at all, a server we did not deploy simply offers no web part (an
 * optional feature for Delta Chat); one we deployed has a broken nginx. Undefined for other errors.
 */
function noHttps(ctx: CheckContext, err: unknown): string | undefined {
  const failure = classifySocketError(err).failure
  if (failure !== 'refused' && failure !== 'timeout' && failure !== 'unreachable') return undefined
  return `nothing answers HTTPS on ${ctx.options.imapHost}:${httpsPort(ctx)}`
}

const httpsHint = (ctx: CheckContext) =>
  `nginx must answer HTTPS on ${ctx.options.imapHost}:${httpsPort(ctx)} with a certificate Delta Chat trusts (pass --ca FILE for a private CA)`

/** No HTTPS answer at all: a name that does not resolve, a closed port or a certificate (each a root cause). */
function httpsFailure(ctx: CheckContext, detail: string, err: unknown): CheckOutcome {
  const { imapHost } = ctx.options
  const unresolved = classifySocketError(err).failure === 'unresolved'
  const hint = unresolved ? unresolvedHint(imapHost, '--imap-host') : httpsHint(ctx)
  return withCause(fail(detail, hint), connectionCause(err, imapHost, httpsPort(ctx)))
}

// ---------------------------------------------------------------- imap.xchatmail

async function xchatmailCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const session = ctx.state.imap.current
  const caps = session ? new Set(session.client.capabilities.keys()) : ctx.findings.capabilities
  if (!caps) return skip('no IMAP session')
  if (caps.has('XCHATMAIL'))
    return ok('XCHATMAIL is advertised after login: Delta Chat treats the server as a chatmail relay')
  const detail =
    'the server does not advertise XCHATMAIL: Delta Chat treats it as ordinary e-mail (keeps fetched messages on the server, shows e-mail settings)'
  const hint =
    "add XCHATMAIL to dovecot's imap_capability (2.3: imap_capability = +XCHATMAIL; 2.4: imap_capability { XCHATMAIL = yes }) and reload dovecot"
  return ctx.options.deployed ? fail(detail, hint) : warn(detail, hint)
}

// ---------------------------------------------------------------- mail.autoconfig

/** Judges the servers of an autoconfig document for the doctor's account. Pure. */
export function judgeAutoconfig(
  servers: AutoconfigServer[],
  expect: { imapHost: string; imapPort: number; user: string },
): CheckOutcome {
  const imap = servers.filter((s) => s.direction === 'incoming' && s.type === 'imap')
  const smtp = servers.filter((s) => s.direction === 'outgoing' && s.type === 'smtp')
  const hint =
    'the XML needs an <incomingServer type="imap"> and an <outgoingServer type="smtp">, each with hostname, port, socketType and username %EMAILADDRESS%'
  if (imap.length === 0 || smtp.length === 0) {
    const missing = [imap.length ? '' : 'imap', smtp.length ? '' : 'smtp'].filter(Boolean).join(' and ')
    return fail(`the autoconfig XML has no complete ${missing} server: Delta Chat cannot use it`, hint)
  }
  const problems: string[] = []
  for (const s of [...imap, ...smtp]) {
    const name = `${s.type} ${s.hostname}:${s.port}`
    if (s.port === 0) problems.push(`${name}: no valid port`)
    if (s.socketType === 'plain')
      problems.push(`${name}: socketType plain (Delta Chat would send the password in clear)`)
    if (s.username !== expect.user) problems.push(`${name}: username ${s.username}, not the address`)
  }
  if (problems.length) return fail(`the autoconfig XML is wrong: ${problems.join('; ')}`, hint)
  const first = imap[0]!
  const sub = smtp[0]!
  const summary = `imap ${first.hostname}:${first.port} ${first.socketType}, smtp ${sub.hostname}:${sub.port} ${sub.socketType}`
  if (!imap.some((s) => s.port === expect.imapPort)) {
    return warn(
      `the autoconfig XML names IMAP port(s) ${imap.map((s) => s.port).join(', ')}, the doctor used ${expect.imapPort} (${summary})`,
      'list the IMAP port dovecot really serves',
    )
  }
  return ok(summary)
}

async function autoconfigCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const url = `https://${ctx.options.domain}${AUTOCONFIG_PATH}`
  let answer: HttpsAnswer
  try {
    answer = await httpsToServer(ctx, 'GET', AUTOCONFIG_PATH)
  } catch (err) {
    const none = noHttps(ctx, err)
    if (none && !ctx.options.deployed) {
      return warn(
        `${none}, so no autoconfig XML: Delta Chat probes autoconfig./autodiscover. names and guesses ports (slower, and a DNS timeout on each miss)`,
        `serve the Thunderbird autoconfig XML at https://${ctx.options.domain}${AUTOCONFIG_PATH}`,
      )
    }
    return httpsFailure(ctx, `cannot fetch ${url}: ${(err as Error).message}`, err)
  }
  const missing = `${url} answered ${answer.status}: Delta Chat probes autoconfig./autodiscover. names and guesses ports (slower, and a DNS timeout on each miss)`
  const serveHint = `serve the Thunderbird autoconfig XML at ${AUTOCONFIG_PATH} (chatmail deploy host does)`
  // Not there: a useful part missing (warn); a server we deployed serves it (fail).
  if (answer.status === 404 || answer.status === 410)
    return ctx.options.deployed ? fail(missing, serveHint) : warn(missing, serveHint)
  if (answer.status !== 200) return fail(`${url} answered ${answer.status}`, serveHint)
  const user = ctx.options.user ?? `someone@${ctx.options.domain}`
  return judgeAutoconfig(parseAutoconfig(answer.body, user), {
    imapHost: ctx.options.imapHost,
    imapPort: ctx.options.imapPort,
    user,
  })
}

// ---------------------------------------------------------------- mail.signup

/** Whether a /new answer's address belongs to the server: user@domain, or user@[IP] on an IP-only one. */
export function addressOnDomain(email: string, domain: string): boolean {
  const at = email.lastIndexOf('@')
  if (at <= 0) return false
  const host = email.slice(at + 1).toLowerCase()
  return host === domain.toLowerCase() || (isIP(domain) !== 0 && host === `[${domain}]`)
}

async function signupCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const url = `https://${ctx.options.domain}/new`
  if (!ctx.options.signup) {
    let answer: HttpsAnswer
    try {
      answer = await httpsToServer(ctx, 'GET', '/new')
    } catch (err) {
      const none = noHttps(ctx, err)
      // Sign-up is optional: a server may hand out accounts some other way.
      if (none && !ctx.options.deployed) return skip(`${none}: the server offers no sign-up at ${url}`)
      return httpsFailure(ctx, `cannot reach ${url}: ${(err as Error).message}`, err)
    }
    const location = String(answer.headers.location ?? '')
    // Ours answers 405 to a GET (POST only); a redirect to dcaccount: is a sign-up too.
    if (answer.status === 405 || /^dcaccount:/i.test(location)) {
      return ok(`${url} answers (POST creates an account; pass --signup to create one)`)
    }
    const detail = `${url} answered ${answer.status}: the server offers no sign-up there (Delta Chat's dcaccount: QR codes need one)`
    // A server we did not deploy may offer no sign-up, or only by invitation elsewhere: skip.
    if (!ctx.options.deployed) return skip(detail)
    if (answer.status === 404) {
      return fail(detail, 'deploy the sign-up endpoint again (chatmail deploy host) and check nginx')
    }
    return fail(detail, 'POST /new must answer JSON {email, password}; check nginx and the sign-up service')
  }
  let answer: HttpsAnswer
  try {
    answer = await httpsToServer(ctx, 'POST', '/new')
  } catch (err) {
    return httpsFailure(ctx, `cannot reach ${url}: ${(err as Error).message}`, err)
  }
  let body: { email?: unknown; password?: unknown; reason?: unknown } = {}
  try {
    body = JSON.parse(answer.body)
  } catch {
    // judged below
  }
  if (answer.status >= 400 && answer.status < 500 && typeof body.reason === 'string') {
    return warn(
      `${url} refused a new account (${answer.status}): ${body.reason}`,
      'registration is not open to everyone',
    )
  }
  if (answer.status !== 200 || typeof body.email !== 'string' || typeof body.password !== 'string') {
    return fail(
      `${url} answered ${answer.status} without {email, password}: ${answer.body.slice(0, 200)}`,
      'POST /new must answer JSON {email, password}; check the sign-up service (journalctl -u chatmail-accounts)',
    )
  }
  if (!addressOnDomain(body.email, ctx.options.domain)) {
    return fail(`${url} handed out ${body.email}, not an address on ${ctx.options.domain}`, 'check the server domain')
  }
  // The account exists once it first logs in: do that, as Delta Chat would next.
  const client = new ImapFlow(imapClientOptions(ctx.options, body.email, body.password))
  client.on('error', () => undefined)
  const close = () => client.close()
  ctx.signal.addEventListener('abort', close, { once: true })
  try {
    await client.connect()
    await client.logout().catch(() => undefined)
  } catch (err) {
    const e = err as Error & { responseText?: string }
    return fail(
      `${url} handed out ${body.email}, but its first IMAP login failed: ${e.responseText ?? e.message}`,
      'accounts are created on first login: check dovecot’s passdb for new accounts',
    )
  } finally {
    ctx.signal.removeEventListener('abort', close)
    client.close()
  }
  return ok(`${url} created ${body.email}; its first IMAP login worked`)
}

export const xchatmailChecks: CheckDef[] = [
  {
    id: 'imap.xchatmail',
    group: 'imap',
    title: 'IMAP XCHATMAIL capability',
    after: ['imap.login'],
    run: xchatmailCheck,
  },
]

export const mailChecks: CheckDef[] = [
  { id: 'mail.autoconfig', group: 'mail', title: 'autoconfig XML', run: autoconfigCheck },
  { id: 'mail.signup', group: 'mail', title: 'sign-up endpoint /new', run: signupCheck },
  { id: 'mail.submission', group: 'mail', title: 'SMTP submission with login', run: submissionCheck },
  {
    id: 'mail.roundtrip',
    group: 'mail',
    title: 'encrypted message to self arrives',
    after: ['mail.submission'],
    timeoutHint:
      'the message was submitted but did not arrive in INBOX in time: check the path postfix → dovecot LMTP (journalctl -u postfix -u dovecot) and the mail queue (postqueue -p)',
    run: roundtripCheck,
  },
  {
    id: 'mail.rejects-unencrypted',
    group: 'mail',
    title: 'unencrypted mail refused',
    after: ['mail.submission'],
    run: rejectsUnencryptedCheck,
  },
]
