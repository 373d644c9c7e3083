/**
 * The doctor's check model. A check is a small async function with a stable id; it declares the
 * checks it needs (`after`), reads shared findings that earlier checks found, and returns an outcome.
 * The runner (runner.ts) starts every check as soon as what it needs exists, applies one timeout
 * per check, and prints results in a fixed order.
 */
import type { TurnMetadata } from '../protocols/metadata-values.js'
import type { DoctorOptions } from './doctor-options.js'
import type { RunState } from './run-state.js'

export type { DoctorOptions } from './doctor-options.js'

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

/** A root cause several checks can fail on (causes.ts makes them). */
export interface Cause {
  /** Equal for failures with the same root cause. */
  key: string
  /** What is wrong, for the dependents' skip detail: "chat.example.org does not resolve". */
  says: string
}

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
