/**
 * --turn HOST:PORT and --relay-url replace what discovery finds. With --turn and a known secret
 * the doctor can mint TURN credentials itself, so the TURN checks run even without metadata.
 */
import type { TurnMetadata } from '../protocols/metadata-values.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { mintTurnCredential } from '../protocols/turn-rest.js'
import type { DoctorOptions, Findings } from './model.js'

/** Lifetime of credentials minted for --turn: long enough for one run. */
const MINTED_TTL_SECONDS = 3600

/** The server's TURN value with --turn's host and port, when given. */
export function applyTurnOverride(turn: TurnMetadata, options: DoctorOptions): TurnMetadata {
  const o = options.turnOverride
  return o ? { ...turn, host: o.host, port: o.port } : turn
}

/** TURN over TLS: the same credentials on the TLS port (used when /turns is absent). */
export function turnsFromTurn(turn: TurnMetadata, options: DoctorOptions): TurnMetadata {
  return { ...turn, port: options.turnTlsPort ?? DEFAULT_PORTS.turnTls }
}

/** Findings known before any check runs. */
export function seedFindings(options: DoctorOptions, nowMs: number): Findings {
  const findings: Findings = {}
  const relay = options.relayUrl ?? options.expectedRelayUrl
  if (relay) findings.relayUrl = new URL(relay)
  const o = options.turnOverride
  if (o && options.turnSecret) {
    const cred = mintTurnCredential(options.turnSecret, { ttlSeconds: MINTED_TTL_SECONDS, nowMs })
    findings.turn = { host: o.host, port: o.port, ...cred }
    findings.turns = turnsFromTurn(findings.turn, options)
    findings.turnSource = 'minted'
  }
  return findings
}
