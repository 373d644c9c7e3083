/**
 * The doctor's check model. A check is a small async function with a stable id; it declares the
 * checks it needs (`after`), reads shared findings that earlier checks found, and returns an outcome.
 * The runner (runner.ts) starts every check as soon as what it needs exists, applies one timeout
 * per check, and prints results in a fixed order.
 */
import type { NameServer } from '../dns/query.js'
import type { ZoneInput } from '../dns/zone.js'
import type { TurnMetadata } from '../protocols/metadata-values.js'
import type { Cause } from './causes.js'
import type { HostProbe } from './host-probe.js'
import type { RunState } from './run-state.js'
import type { TlsEndpoint } from './tls-ports.js'

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

export interface CheckResult {
  id: string
  group: string
  title: string
  status: CheckStatus
  detail: string
  /** What the operator should change; every fail carries one. */
  hint?: string
  durationMs: number
}

export interface CheckOutcome {
  status: CheckStatus
  detail: string
  hint?: string
  /**
   * The root cause of a failure that other checks can share (causes.ts): the first failure of a
   * cause, in check order, is reported; later ones skip naming it. Not part of the report.
   */
  cause?: Cause
}

export interface DoctorOptions {
  domain: string
  imapHost: string
  /** 993 = implicit TLS; 143 = STARTTLS. */
  imapPort: number
  /** STARTTLS instead of implicit TLS (default: imapPort === 143). */
  imapStarttls?: boolean
  user?: string
  password?: string
  /** The server's TURN secret, when known: enables turn.credential.hmac. */
  turnSecret?: string
  /** Extra CA certificate(s), PEM. */
  ca?: string
  /** Accept any certificate; TLS checks then warn. */
  insecure: boolean
  /** Overrides of what discovery found. */
  relayUrl?: string
  /**
   * The relay URL the server should advertise (the config's iroh.relay_url). The relay checks start
   * with it at once, without waiting for discovery; metadata.irohrelay fails if the server
   * advertises another.
   */
  expectedRelayUrl?: string
  /**
   * Where the config says TURN runs. The doctor connects there while discovery runs; the TURN
   * checks still allocate with the discovered credentials, at the discovered server.
   */
  expectedTurn?: { host: string; port: number; tlsPort: number }
  turnOverride?: { host: string; port: number }
  /** TLS port of TURN when metadata has no /turns (default 5349). */
  turnTlsPort?: number
  /**
   * The config for this domain says chatmail deployed this server: everything its stack offers
   * (TURN over TCP and TLS, every TLS endpoint) must work, so "not offered" is a failure, not a skip.
   */
  deployed?: boolean
  /** Ports of TLS endpoints not on their usual port (--tls-port NAME=PORT), by endpoint name. */
  tlsPorts?: Partial<Record<TlsEndpoint, number>>
  /** The host over SSH (--ssh, or deploy host's connection): enables the host checks. */
  host?: HostProbe
  timeoutMs: number
  /** The zone the dns group expects (from chatmail.toml for the domain; else what any chatmail relay publishes). */
  dnsZone?: ZoneInput
  /** Ask this DNS server instead of the domain's authoritative nameservers (--nameserver). */
  nameserver?: NameServer
  /** mail.signup creates an account through POST /new (and logs in with it) instead of only asking. */
  signup?: boolean
}

/** What checks found and later ones read. Each is written once, by the check that owns it. */
export interface Findings {
  capabilities?: Set<string>
  /** Raw GETMETADATA answers, key → value (null = NIL / absent). */
  metadata?: Record<string, string | null>
  /** TURN server and credentials, from /shared/vendor/deltachat/turn (or --turn + secret). */
  turn?: TurnMetadata
  /** TURN-over-TLS server and credentials (from /turns, or the turn value with the TLS port). */
  turns?: TurnMetadata
  /** The relay URL clients are told about (metadata, or --relay-url). */
  relayUrl?: URL
  /** Where findings.turn came from: the server's metadata, or minted here for --turn with a known secret. */
  turnSource?: 'metadata' | 'minted'
}

export interface CheckContext {
  options: DoctorOptions
  findings: Findings
  /** What this run holds open for its checks (the IMAP session, early TURN connections). */
  state: RunState
  /** Aborted when the check's timeout passes; pass it to every socket and request. */
  signal: AbortSignal
  timeoutMs: number
  /** The finished result of a check named in `after`. */
  result(id: string): Promise<CheckResult>
}

export interface CheckDef {
  id: string
  group: string
  title: string
  /** Ids of checks that must finish first (their findings are then available). */
  after?: string[]
  /**
   * The fact this check discovers. When an override (--turn, --relay-url) already supplied it, checks
   * that wait for this one still run if it fails or is skipped, and selecting a dependent with --only
   * does not pull this check in.
   */
  provides?: keyof Findings
  /** The hint of a timeout failure, when the runner's generic one would not say what to change. */
  timeoutHint?: string
  run(ctx: CheckContext): Promise<CheckOutcome>
}

/** The doctor's answer: the overall status and every check in registry order. */
export interface DoctorReport {
  status: 'ok' | 'warn' | 'fail'
  checks: CheckResult[]
  /** Wall time of the whole run. */
  durationMs?: number
}

export function overallStatus(checks: readonly CheckResult[]): DoctorReport['status'] {
  if (checks.some((c) => c.status === 'fail')) return 'fail'
  if (checks.some((c) => c.status === 'warn')) return 'warn'
  return 'ok'
}

export const ok = (detail: string): CheckOutcome => ({ status: 'ok', detail })
export const warn = (detail: string, hint?: string): CheckOutcome => ({
  status: 'warn',
  detail,
  ...(hint ? { hint } : {}),
})
export const fail = (detail: string, hint: string): CheckOutcome => ({ status: 'fail', detail, hint })
export const skip = (detail: string): CheckOutcome => ({ status: 'skip', detail })
