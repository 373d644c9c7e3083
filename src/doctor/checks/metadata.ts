/**
 * The discovery group: what Delta Chat reads with GETMETADATA, parsed exactly as core parses it.
 * All three checks share ONE `GETMETADATA ""` for all keys.
 */
import { isIPv6 } from 'node:net'
import {
  METADATA_KEYS,
  parseIrohRelayUrl,
  parseTurnMetadata,
  type TurnMetadata,
} from '../../protocols/metadata-values.js'
import type { MetadataValues } from '../imap-metadata.js'
import { oversizedAnswer } from '../imap-session.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'
import { applyTurnOverride, turnsFromTurn } from '../overrides.js'

const ALL_KEYS = Object.values(METADATA_KEYS)
const FIX_SERVICE =
  "the metadata dict service (chatmail-metadata) must answer it; check that it runs and that dovecot's mail_attribute_dict points at its socket"

/** The server's answers for every key, fetched once per run. */
async function metadataValues(ctx: CheckContext): Promise<MetadataValues | CheckOutcome> {
  const session = ctx.state.imap.current
  if (!session) return skip('no IMAP session')
  try {
    const values = await session.metadata(ALL_KEYS, ctx.signal)
    ctx.findings.metadata = values
    return values
  } catch (err) {
    const e = err as Error & { responseText?: string }
    const oversized = oversizedAnswer(err)
    if (oversized) return fail(`GETMETADATA: ${oversized}`, `${FIX_SERVICE}; its answers are a few hundred bytes`)
    return fail(`GETMETADATA failed: ${e.responseText ?? e.message}`, FIX_SERVICE)
  }
}

const isOutcome = (v: MetadataValues | CheckOutcome): v is CheckOutcome => typeof v.status === 'string' && 'detail' in v

/** A value whose first part is an IPv6 address: core splits on ':' and cannot read it. */
export function bareIpv6Host(value: string): string | undefined {
  const parts = value.split(':')
  if (parts.length <= 4) return undefined
  const host = parts.slice(0, -3).join(':')
  return isIPv6(host) ? host : undefined
}

/** Parses a turn value as core does; the failure outcome when core would not accept it. */
export function judgeTurnValue(key: string, value: string): { turn: TurnMetadata } | { outcome: CheckOutcome } {
  const v6 = bareIpv6Host(value)
  if (v6) {
    return {
      outcome: fail(
        `${key} has the bare IPv6 host ${v6}: Delta Chat splits the value on ':' and cannot parse it`,
        'use a DNS name (or an IPv4 address) as the TURN host (turn.host in chatmail.toml)',
      ),
    }
  }
  const parsed = parseTurnMetadata(value)
  if (!parsed.ok) {
    return {
      outcome: fail(
        `${key} is not host:port:username:password as Delta Chat parses it: ${parsed.reason}`,
        `the value must be one entry host:port:timestamp:password (a Unix-timestamp username, e.g. example.org:3478:1767225600:…); ${FIX_SERVICE}`,
      ),
    }
  }
  return { turn: parsed.value }
}

/** Two TURN values naming the same server and port (Madmail serves /turns = /turn). */
export const sameEndpoint = (a: TurnMetadata, b: TurnMetadata): boolean =>
  a.host.toLowerCase() === b.host.toLowerCase() && a.port === b.port

const describeTurn = (t: TurnMetadata) => `${t.host}:${t.port}, username ${t.username}`

async function irohRelayCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const values = await metadataValues(ctx)
  if (isOutcome(values)) return values
  const raw = values[METADATA_KEYS.irohrelay]
  if (raw === null || raw === undefined || raw === '') {
    const detail = `${METADATA_KEYS.irohrelay} is not set: Delta Chat falls back to n0's public iroh relays`
    const hint = `set iroh.relay_url in chatmail.toml (e.g. https://${ctx.options.domain}) and deploy; ${FIX_SERVICE}`
    // Our config deployed a relay and the metadata service to announce it: its absence is a fault.
    return ctx.options.deployed && ctx.options.expectedRelayUrl
      ? fail(`${detail}, although the config deployed ${ctx.options.expectedRelayUrl}`, hint)
      : warn(detail, hint)
  }
  const parsed = parseIrohRelayUrl(raw)
  if (!parsed.ok) {
    return fail(
      `${METADATA_KEYS.irohrelay} is not a relay URL Delta Chat accepts: ${parsed.reason}`,
      'set iroh.relay_url to an http(s) URL of the relay, e.g. https://DOMAIN',
    )
  }
  const expected = ctx.options.expectedRelayUrl
  if (!ctx.options.relayUrl && expected && new URL(expected).href !== parsed.value.href) {
    return fail(
      `the server advertises ${parsed.value.href}, but the config's iroh.relay_url is ${new URL(expected).href} (the relay checks use the config's)`,
      'deploy again so the server advertises the configured relay, or fix iroh.relay_url in chatmail.toml',
    )
  }
  ctx.findings.relayUrl ??= parsed.value
  const overridden = ctx.options.relayUrl ? ` (checking ${ctx.options.relayUrl} instead, from --relay-url)` : ''
  return ok(`${parsed.value.href}${overridden}`)
}

async function turnCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const values = await metadataValues(ctx)
  if (isOutcome(values)) return values
  const raw = values[METADATA_KEYS.turn]
  if (raw === null || raw === undefined || raw === '') {
    const detail = `${METADATA_KEYS.turn} is not set: Delta Chat falls back to turn.delta.chat for calls`
    const hint = `serve fresh TURN credentials as ${METADATA_KEYS.turn}; ${FIX_SERVICE}`
    // Calls still work through the public fallback; with our config, our TURN server is missing.
    return ctx.options.deployed ? fail(`${detail}, although the config deployed coturn`, hint) : warn(detail, hint)
  }
  const judged = judgeTurnValue(METADATA_KEYS.turn, raw)
  if ('outcome' in judged) return judged.outcome
  ctx.findings.turn = applyTurnOverride(judged.turn, ctx.options)
  ctx.findings.turnSource = 'metadata'
  const overridden = ctx.options.turnOverride
    ? ` (TURN checks use ${describeTurn(ctx.findings.turn)}, from --turn)`
    : ''
  return ok(`${describeTurn(judged.turn)}${overridden}`)
}

/** TURN over TLS when /turns is absent: the /turn value (or the minted one) on the TLS port. */
function fallbackTurns(ctx: CheckContext, values: MetadataValues): TurnMetadata | undefined {
  const raw = values[METADATA_KEYS.turn]
  const judged = raw ? judgeTurnValue(METADATA_KEYS.turn, raw) : undefined
  const turn = judged && 'turn' in judged ? applyTurnOverride(judged.turn, ctx.options) : ctx.findings.turn
  return turn ? turnsFromTurn(turn, ctx.options) : undefined
}

async function turnsCheck(ctx: CheckContext): Promise<CheckOutcome> {
  const values = await metadataValues(ctx)
  if (isOutcome(values)) return values
  const raw = values[METADATA_KEYS.turns]
  if (raw === null || raw === undefined || raw === '') {
    const turns = fallbackTurns(ctx, values)
    if (turns) ctx.findings.turns = turns
    return skip(`${METADATA_KEYS.turns} is not set (Delta Chat never asks for it)`)
  }
  const judged = judgeTurnValue(METADATA_KEYS.turns, raw)
  if ('outcome' in judged) return judged.outcome
  const turn = fallbackTurns(ctx, values)
  const turnRaw = values[METADATA_KEYS.turn]
  const turnJudged = turnRaw ? judgeTurnValue(METADATA_KEYS.turn, turnRaw) : undefined
  if (turnJudged && 'turn' in turnJudged && sameEndpoint(judged.turn, turnJudged.turn)) {
    if (turn) ctx.findings.turns = turn
    return skip(
      `${METADATA_KEYS.turns} names the same server as ${METADATA_KEYS.turn} (${judged.turn.host}:${judged.turn.port}), as Madmail serves it: no separate TURN over TLS is advertised (Delta Chat never asks for it)`,
    )
  }
  const host = ctx.options.turnOverride?.host
  ctx.findings.turns = host ? { ...judged.turn, host } : judged.turn
  return ok(describeTurn(judged.turn))
}

export const metadataChecks: CheckDef[] = [
  {
    id: 'metadata.irohrelay',
    group: 'discovery',
    title: 'iroh relay URL in metadata',
    after: ['imap.metadata.capability'],
    provides: 'relayUrl',
    run: irohRelayCheck,
  },
  {
    id: 'metadata.turn',
    group: 'discovery',
    title: 'TURN server in metadata',
    after: ['imap.metadata.capability'],
    provides: 'turn',
    run: turnCheck,
  },
  {
    id: 'metadata.turns',
    group: 'discovery',
    title: 'TURN over TLS in metadata',
    after: ['imap.metadata.capability'],
    provides: 'turns',
    run: turnsCheck,
  },
]
