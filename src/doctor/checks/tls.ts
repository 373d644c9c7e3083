/**
 * The tls group: the certificate on every TLS endpoint a chatmail server offers — IMAP 993,
 * submission 465 (implicit TLS) and 587 (STARTTLS), HTTPS 443, TURN over TLS 5349: valid for the
 * name, a trusted chain, days left (warn under CERT_WARN_DAYS). An endpoint where nothing
 * listens is skipped with the reason, unless Delta Chat needs it or our config deployed it.
 */
import {
  badCertificate,
  closedPort,
  connectionCause,
  noSubmission,
  unresolvedHint,
  unresolvedName,
  withCause,
} from '../causes.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, skip } from '../model.js'
import { describeUnreachable, type Reachability, tcpReachable } from '../reachability.js'
import { probeSmtpStarttls } from '../smtp-starttls.js'
import { TLS_ENDPOINTS, type TlsEndpoint } from '../tls-ports.js'
import { type CertificateReport, probeImapTls } from '../tls-probe.js'
import { type CertificateService, judgeCertificate } from './imap.js'

interface EndpointDef {
  title: string
  port: number
  service: string
  /** What the port is for, in a detail: "IMAP", "SMTP submission", … */
  what: string
}

const ENDPOINTS: Record<TlsEndpoint, EndpointDef> = {
  imap: { title: 'IMAP over TLS (993)', port: 993, service: 'dovecot', what: 'IMAP' },
  submission: { title: 'SMTP submission over TLS (465)', port: 465, service: 'postfix', what: 'SMTP submission' },
  'submission-starttls': {
    title: 'SMTP submission with STARTTLS (587)',
    port: 587,
    service: 'postfix',
    what: 'SMTP submission (STARTTLS)',
  },
  https: { title: 'HTTPS (443)', port: 443, service: 'nginx', what: 'HTTPS' },
  turns: { title: 'TURN over TLS (5349)', port: 5349, service: 'coturn', what: 'TURN over TLS' },
}

/** Where an endpoint is: its host and port, from the options (and the config through them). */
export function endpointAddress(ctx: CheckContext, name: TlsEndpoint): { host: string; port: number } {
  const o = ctx.options
  const override = o.tlsPorts?.[name]
  switch (name) {
    case 'imap':
      return { host: o.imapHost, port: override ?? ENDPOINTS.imap.port }
    case 'turns':
      return {
        host: o.expectedTurn?.host ?? o.domain,
        port: override ?? o.expectedTurn?.tlsPort ?? o.turnTlsPort ?? ENDPOINTS.turns.port,
      }
    default:
      return { host: o.domain, port: override ?? ENDPOINTS[name].port }
  }
}

/** Connect before the TLS probe may use at most this share of the check's time. */
const REACH_SHARE = 0.4

/** The verdict for an endpoint where no TCP connection came up. */
async function absent(
  ctx: CheckContext,
  name: TlsEndpoint,
  where: { host: string; port: number },
  reach: Exclude<Reachability, 'open'>,
): Promise<CheckOutcome> {
  const def = ENDPOINTS[name]
  // A name that does not resolve is a DNS problem, whatever the server offers.
  if (reach === 'unresolved') {
    const flag = name === 'imap' ? '--imap-host' : name === 'turns' && ctx.options.expectedTurn ? undefined : 'DOMAIN'
    return withCause(
      fail(
        `${where.host} does not resolve: Delta Chat cannot reach ${def.what} there`,
        unresolvedHint(where.host, flag),
      ),
      unresolvedName(where.host),
    )
  }
  const outcome = await closedEndpoint(ctx, name, where, reach)
  return withCause(outcome, outcome.cause ?? closedPort(where.host, where.port))
}

async function closedEndpoint(
  ctx: CheckContext,
  name: TlsEndpoint,
  where: { host: string; port: number },
  reach: 'refused' | 'silent',
): Promise<CheckOutcome> {
  const def = ENDPOINTS[name]
  const nothing = describeUnreachable(reach, `${where.host}:${where.port}`)
  const startHint = `start ${def.service} and open TCP ${where.port} in the firewall (systemctl status ${def.service})`
  if (ctx.options.deployed) {
    return fail(`${nothing}, although chatmail deployed ${def.what} there (${def.service})`, startHint)
  }
  switch (name) {
    case 'imap': {
      const o = ctx.options
      if (o.imapPort === where.port && !o.imapStarttls)
        return fail(`${nothing}: Delta Chat logs in to IMAP there`, startHint)
      return skip(`${nothing}: no IMAP over implicit TLS here; IMAP on port ${o.imapPort} is checked by imap.tls`)
    }
    case 'submission':
    case 'submission-starttls': {
      const other: TlsEndpoint = name === 'submission' ? 'submission-starttls' : 'submission'
      const alt = endpointAddress(ctx, other)
      const timeoutMs = Math.max(100, Math.floor(ctx.timeoutMs * REACH_SHARE))
      if ((await tcpReachable(alt.host, alt.port, { timeoutMs, signal: ctx.signal })) === 'open') {
        return skip(`${nothing}: not offered; Delta Chat sends mail over port ${alt.port} (${other})`)
      }
      // One cause for both submission checks (and mail.submission): said once, by the first.
      const cause = noSubmission(
        where.host,
        [where.port, alt.port].sort((x, y) => x - y),
      )
      return withCause(
        fail(
          `${nothing}, nor on port ${alt.port}: Delta Chat cannot send mail`,
          `offer SMTP submission on 465 (implicit TLS) or 587 (STARTTLS): ${startHint}`,
        ),
        cause,
      )
    }
    case 'https':
      return skip(`${nothing}: this server offers no HTTPS, and Delta Chat does not need it`)
    case 'turns':
      return skip(`${nothing}: no TURN over TLS offered; Delta Chat uses TURN over UDP only`)
  }
}

function probe(ctx: CheckContext, name: TlsEndpoint, host: string, port: number): Promise<CertificateReport> {
  const o = { ca: ctx.options.ca, signal: ctx.signal }
  return name === 'submission-starttls'
    ? probeSmtpStarttls(host, port, o)
    : probeImapTls(host, port, { starttls: false, ...o })
}

function endpointCheck(name: TlsEndpoint): CheckDef['run'] {
  return async (ctx) => {
    const def = ENDPOINTS[name]
    const where = endpointAddress(ctx, name)
    const timeoutMs = Math.max(100, Math.floor(ctx.timeoutMs * REACH_SHARE))
    const reach = await tcpReachable(where.host, where.port, { timeoutMs, signal: ctx.signal })
    if (reach !== 'open') return absent(ctx, name, where, reach)
    const service: CertificateService = { service: def.service, hostFlag: name === 'imap' ? '--imap-host' : 'DOMAIN' }
    try {
      const cert = await probe(ctx, name, where.host, where.port)
      const outcome = judgeCertificate(cert, where.host, ctx.options.insecure, Date.now(), service)
      return withCause(
        { ...outcome, detail: `${where.host}:${where.port}: ${outcome.detail}` },
        badCertificate(where.host, where.port),
      )
    } catch (err) {
      return withCause(
        fail(
          `${where.host}:${where.port} accepts connections but no TLS session came up: ${(err as Error).message}`,
          `configure TLS for ${def.what} in ${def.service} on port ${where.port} (certificate and key) and reload it`,
        ),
        connectionCause(err, where.host, where.port),
      )
    }
  }
}

export const tlsChecks: CheckDef[] = TLS_ENDPOINTS.map((name) => ({
  id: `tls.${name}`,
  group: 'tls',
  title: ENDPOINTS[name].title,
  run: endpointCheck(name),
}))
