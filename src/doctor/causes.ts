/**
 * Root causes: what several checks can fail on at once (a name that does not resolve, a port where
 * nothing answers, a certificate that is not accepted). A failing check names its cause; the runner
 * (runner.ts) keeps the first failure of each cause, in check order, and reports the later ones as
 * skipped with "needs <that check>", so one cause is said once, with the fix that fits it.
 */
import { classifySocketError } from '../lib/socket-errors.js'
import type { Cause, CheckOutcome } from './model.js'

export type { Cause } from './model.js'

const lower = (host: string) => host.toLowerCase()

export const unresolvedName = (host: string): Cause => ({
  key: `unresolved ${lower(host)}`,
  says: `${host} does not resolve`,
})

export const closedPort = (host: string, port: number): Cause => ({
  key: `closed ${lower(host)}:${port}`,
  says: `nothing answers on ${host}:${port}`,
})

export const badCertificate = (host: string, port: number): Cause => ({
  key: `certificate ${lower(host)}:${port}`,
  says: `the certificate on ${host}:${port} is not accepted`,
})

/** Neither submission port answers: tls.submission, tls.submission-starttls and mail.submission share it. */
export const noSubmission = (host: string, ports: readonly number[]): Cause => ({
  key: `no submission ${lower(host)}`,
  says: `nothing answers SMTP submission on ${host} (ports ${ports.join(', ')})`,
})

/** The root cause of a failed connection to host:port, when it is one of the shared kinds. */
export function connectionCause(err: unknown, host: string, port: number): Cause | undefined {
  const c = classifySocketError(err)
  if (c.failure === 'unresolved') return unresolvedName(host)
  if (c.failure === 'refused' || c.failure === 'timeout' || c.failure === 'unreachable') return closedPort(host, port)
  return c.certificate ? badCertificate(host, port) : undefined
}

/** The outcome with its cause, when it is a failure (ok, warn and skip have no root cause to share). */
export function withCause(outcome: CheckOutcome, cause: Cause | undefined): CheckOutcome {
  return outcome.status === 'fail' && cause ? { ...outcome, cause } : outcome
}

/** The hint for a name that does not resolve: its address records, or the flag that names another host. */
export const unresolvedHint = (host: string, flag?: string): string =>
  `${host} does not resolve: check its DNS A/AAAA records${flag ? `, or pass ${flag}` : ''}`
