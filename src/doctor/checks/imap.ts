/** The imap group: the certificate, logging in, and whether METADATA (discovery) is offered. */

import { ReadLimitError } from '../../lib/read-limits.js'
import { classifySocketError } from '../../lib/socket-errors.js'
import { badCertificate, connectionCause, unresolvedHint, withCause } from '../causes.js'
import { oversizedAnswer } from '../imap-session.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'
import { type CertificateReport, probeImapTls, usesStarttls } from '../tls-probe.js'

/** Certificates closer to their end than this are a warning. */
export const CERT_WARN_DAYS = 14
const DAY_MS = 86_400_000

const IMAP_TIMEOUT_HINT =
  'nothing answered on the IMAP port in time: check that dovecot runs (systemctl status dovecot), that the port is open in the firewall, and that --imap-host/--imap-port point at it'

/** The hint for a connection that did not come up: DNS, refused, or silence. */
function connectHint(err: unknown, host: string): string {
  switch (classifySocketError(err).failure) {
    case 'unresolved':
      return unresolvedHint(host, '--imap-host')
    case 'refused':
      return 'nothing listens on that port: start dovecot (systemctl status dovecot) or check --imap-port'
    default:
      return IMAP_TIMEOUT_HINT
  }
}

/** Which server presents the certificate, for the hints: its name, and the flag that names its host. */
export interface CertificateService {
  /** The program to reload after renewing, e.g. dovecot, postfix, nginx, coturn. */
  service: string
  /** How to point the doctor at the name the certificate is for. */
  hostFlag: string
}
const IMAP_SERVICE: CertificateService = { service: 'dovecot', hostFlag: '--imap-host' }

const chainHint = (reason: string, s: CertificateService): string | undefined =>
  ({
    CERT_HAS_EXPIRED: `renew the certificate (certbot renew, or \`chatmail deploy host\` again) and reload ${s.service}`,
    CERT_NOT_YET_VALID: 'the certificate is not valid yet: check the clock of the server and of this machine',
  })[reason]
const UNTRUSTED_HINT =
  'Delta Chat only trusts certificates from public CAs: use tls.mode = "acme" (or install the full chain); pass --ca FILE if you trust this CA'

/** What is wrong with a certificate, as detail + hint; undefined when nothing is. */
export function certificateProblem(
  cert: CertificateReport,
  host: string,
  s: CertificateService = IMAP_SERVICE,
): { detail: string; hint: string } | undefined {
  if (cert.chainError) {
    return {
      detail: `certificate not trusted: ${cert.chainError}${cert.chainError === 'CERT_HAS_EXPIRED' ? ` (expired ${cert.validTo.toISOString().slice(0, 10)})` : ''}`,
      hint: chainHint(cert.chainError, s) ?? UNTRUSTED_HINT,
    }
  }
  if (cert.nameError) {
    return {
      detail: `certificate is for ${cert.names.join(', ') || 'no name'}, not ${host}`,
      hint: `get a certificate whose subjectAltName includes ${host}, or point ${s.hostFlag} at the name the certificate is for`,
    }
  }
  return undefined
}

export function judgeCertificate(
  cert: CertificateReport,
  host: string,
  insecure: boolean,
  nowMs: number,
  s: CertificateService = IMAP_SERVICE,
): CheckOutcome {
  const daysLeft = Math.floor((cert.validTo.getTime() - nowMs) / DAY_MS)
  const summary = `${cert.protocol}, certificate for ${cert.names.join(', ')}, valid until ${cert.validTo.toISOString().slice(0, 10)} (${daysLeft} days left)`
  const problem = certificateProblem(cert, host, s)
  if (problem) {
    return insecure
      ? warn(`${problem.detail} (accepted because of --insecure)`, problem.hint)
      : fail(problem.detail, problem.hint)
  }
  if (daysLeft < CERT_WARN_DAYS) {
    return warn(
      `${summary}; renew soon`,
      `renew the certificate (certbot renew), reload ${s.service}, and check that automatic renewal runs`,
    )
  }
  return ok(summary)
}

async function tlsCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const { imapHost, imapPort, ca, insecure } = ctx.options
  try {
    const cert = await probeImapTls(imapHost, imapPort, { starttls: usesStarttls(ctx.options), ca, signal: ctx.signal })
    return withCause(judgeCertificate(cert, imapHost, insecure, Date.now()), badCertificate(imapHost, imapPort))
  } catch (err) {
    if (err instanceof ReadLimitError) {
      return fail(`no TLS connection to ${imapHost}:${imapPort}: ${(err as Error).message}`, OVERSIZED_HINT)
    }
    return withCause(
      fail(`no TLS connection to ${imapHost}:${imapPort}: ${(err as Error).message}`, connectHint(err, imapHost)),
      connectionCause(err, imapHost, imapPort),
    )
  }
}

const OVERSIZED_HINT =
  'this is not how dovecot answers: check that --imap-host/--imap-port point at the chatmail server, and what listens there'

function loginFailure(err: unknown, ctx: CheckContext): CheckOutcome {
  return withCause(loginOutcome(err, ctx), connectionCause(err, ctx.options.imapHost, ctx.options.imapPort))
}

function loginOutcome(err: unknown, ctx: CheckContext): CheckOutcome {
  const e = err as Error & { authenticationFailed?: boolean; code?: string; responseText?: string }
  const where = `${ctx.options.imapHost}:${ctx.options.imapPort}`
  if (e.authenticationFailed) {
    return fail(
      `${where} refused the login of ${ctx.options.user}${e.responseText ? `: ${e.responseText}` : ''}`,
      'check --user/--password (or CHATMAIL_USER/CHATMAIL_PASSWORD, [doctor] in chatmail.toml); on a chatmail server the address must be on its domain',
    )
  }
  const oversized = oversizedAnswer(err)
  if (oversized) return fail(`${where}: ${oversized}`, OVERSIZED_HINT)
  if (classifySocketError(err).certificate) {
    return fail(
      `TLS to ${where} failed: ${e.message}`,
      'fix the certificate (see imap.tls), pass --ca FILE for a private CA, or --insecure to look past it',
    )
  }
  return fail(`cannot log in at ${where}: ${e.responseText ?? e.message}`, connectHint(err, ctx.options.imapHost))
}

async function loginCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const { user, password } = ctx.options
  if (!user || !password) {
    return skip('no account to log in with: pass --user and --password (or CHATMAIL_USER/CHATMAIL_PASSWORD)')
  }
  try {
    const session = await ctx.state.imap.open(ctx.options, { user, password }, ctx.signal)
    ctx.findings.capabilities = new Set(session.client.capabilities.keys())
    const unverified = session.unverifiedTls
      ? '; the password was sent over TLS whose certificate did not verify (accepted because of --insecure)'
      : ''
    return ok(`logged in as ${user} at ${ctx.options.imapHost}:${ctx.options.imapPort}${unverified}`)
  } catch (err) {
    return loginFailure(err, ctx)
  }
}

async function capabilityCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const session = ctx.state.imap.current
  const capabilities = session ? new Set(session.client.capabilities.keys()) : ctx.findings.capabilities
  if (!capabilities) return skip('no IMAP session')
  ctx.findings.capabilities = capabilities
  if (capabilities.has('METADATA')) return ok('METADATA is advertised after login')
  return fail(
    'the server does not advertise METADATA: Delta Chat gets no TURN server and no iroh relay from it',
    "set `imap_metadata = yes` in dovecot's protocol imap section (with mail_attribute_dict) and reload dovecot",
  )
}

export const imapChecks: CheckDef[] = [
  {
    id: 'imap.tls',
    group: 'imap',
    title: 'IMAP certificate',
    timeoutHint: IMAP_TIMEOUT_HINT,
    run: tlsCheck,
  },
  {
    id: 'imap.login',
    group: 'imap',
    title: 'IMAP login',
    timeoutHint: IMAP_TIMEOUT_HINT,
    run: loginCheck,
  },
  {
    id: 'imap.metadata.capability',
    group: 'imap',
    title: 'IMAP METADATA capability',
    after: ['imap.login'],
    run: capabilityCheck,
  },
]
