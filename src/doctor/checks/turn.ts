/**
 * The turn group: can a client really get a relayed address from the TURN server, over UDP,
 * TCP and TLS, with the credentials the server hands out; and does the server refuse forged ones?
 */
import { isIP } from 'node:net'
import { METADATA_KEYS, type TurnMetadata } from '../../protocols/metadata-values.js'
import { mintTurnCredential, type TurnCredential, verifyTurnCredential } from '../../protocols/turn-rest.js'
import {
  type AllocateOptions,
  type AllocateResult,
  allocate,
  TurnError,
  type TurnTransport,
} from '../../turn/client.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'
import { turnsFromTurn } from '../overrides.js'
import { describeUnreachable, type Reachability, tcpReachable } from '../reachability.js'
import { judgeTurnValue, sameEndpoint } from './metadata.js'

export const NO_CREDENTIALS =
  'discovery found no TURN credentials (metadata.turn), so there is nothing to allocate with'

const SECRET_MISMATCH =
  "the server's static-auth-secret differs from the secret that minted the credentials (chatmail-metadata config / turn.secret): make them the same and restart coturn"

/**
 * The TURN-over-TLS server this server advertises (its /turns value, read from the shared metadata
 * answers, or what discovery found), 'same' when /turns names the /turn server itself (Madmail),
 * undefined when none is advertised (absent, unparsable, or only minted here for --turn).
 */
function advertisedTurns(ctx: CheckContext, turn: TurnMetadata): TurnMetadata | 'same' | undefined {
  const { metadata, turns: found, turnSource } = ctx.findings
  let turns: TurnMetadata | undefined
  if (metadata) {
    const raw = metadata[METADATA_KEYS.turns]
    const judged = raw ? judgeTurnValue(METADATA_KEYS.turns, raw) : undefined
    if (judged && 'turn' in judged) turns = { ...judged.turn, host: ctx.options.turnOverride?.host ?? judged.turn.host }
  } else if (turnSource !== 'minted') turns = found
  if (!turns) return undefined
  return sameEndpoint(turns, turn) ? 'same' : turns
}

/** Where and with what to allocate for a transport, or undefined without credentials. */
export function target(ctx: CheckContext, transport: TurnTransport): TurnMetadata | undefined {
  const turn = ctx.findings.turn
  if (!turn) return undefined
  if (transport !== 'tls') return turn
  const advertised = advertisedTurns(ctx, turn)
  if (advertised && advertised !== 'same') return advertised
  return turnsFromTurn(turn, ctx.options)
}

/** Slightly under the check's own timeout, so the report says what did not answer. */
export const allocationTimeout = (ctx: CheckContext) => Math.max(ctx.timeoutMs - 250, Math.ceil(ctx.timeoutMs * 0.9))

/** What an allocation for this check needs: the target, credentials, deadline and TLS settings. */
export function allocateOptions(
  ctx: CheckContext,
  t: TurnMetadata,
  transport: TurnTransport,
  password = t.password,
): AllocateOptions {
  return {
    host: t.host,
    port: t.port,
    transport,
    username: t.username,
    password,
    // A little under the check's own timeout, so the report says what did not answer.
    timeoutMs: allocationTimeout(ctx),
    signal: ctx.signal,
    ...(transport === 'tls'
      ? {
          tls: {
            ...(ctx.options.ca ? { ca: ctx.options.ca } : {}),
            rejectUnauthorized: !ctx.options.insecure,
            ...(isIP(t.host) ? {} : { servername: t.host }),
          },
        }
      : {}),
  }
}

async function tryAllocate(
  ctx: CheckContext,
  t: TurnMetadata,
  transport: TurnTransport,
  password = t.password,
): Promise<AllocateResult | TurnError> {
  const timeoutMs = allocationTimeout(ctx)
  try {
    const early = password === t.password ? await ctx.state.turnPrefetch.take(transport, t.host, t.port) : undefined
    if (early) {
      try {
        return await early.complete({ username: t.username, password }, { timeoutMs, signal: ctx.signal })
      } catch (err) {
        // The early connection went away while discovery ran: allocate from scratch below.
        if (!(err instanceof TurnError && (err.kind === 'unreachable' || err.kind === 'refused'))) throw err
      }
    }
    return await allocate(allocateOptions(ctx, t, transport, password))
  } catch (err) {
    if (err instanceof TurnError) return err
    throw err
  }
}

const isTurnError = (r: AllocateResult | TurnError): r is TurnError => r instanceof Error

export function describeAllocation(r: AllocateResult): string {
  const addr = r.relayed.family === 'IPv6' ? `[${r.relayed.address}]` : r.relayed.address
  return `relayed ${addr}:${r.relayed.port} (lifetime ${r.lifetime}s, ${r.released ? 'released' : 'not released'})`
}

/** What to change, for each way an allocation fails. */
export function hintFor(err: TurnError, transport: TurnTransport, t: TurnMetadata, nowMs = Date.now()): string {
  const proto = transport === 'udp' ? 'UDP' : 'TCP'
  const where = `${proto} ${t.port}`
  switch (err.kind) {
    case 'timeout':
      return `is ${where} open in the firewall? is coturn running (systemctl status coturn) and listening on ${t.host}?`
    case 'refused':
    case 'unreachable':
      return transport === 'tls'
        ? `nothing accepts TLS on ${t.host}:${t.port}: is coturn running with tls-listening-port=${t.port}, cert= and pkey=, and is TCP ${t.port} open?`
        : `nothing answers on ${where} of ${t.host}: is coturn running with listening-port=${t.port}, and does ${t.host} resolve to this server?`
    case 'auth':
      return t.expires * 1000 <= nowMs
        ? `the credentials expired at ${new Date(t.expires * 1000).toISOString()}: the metadata service must mint fresh ones on every lookup (and the clocks must be right)`
        : SECRET_MISMATCH
    case 'stale-nonce':
      return 'coturn kept rejecting the nonce as stale: check the server clock and the stale-nonce setting'
    case 'tls':
      return `install a certificate valid for ${t.host} in coturn (cert= and pkey=, e.g. the domain's certificate) and restart it; or run doctor with --insecure to accept it`
    case 'server':
      return serverHint(err.code)
    case 'protocol':
      return `the server on ${t.host}:${t.port} does not answer like a TURN server: is it coturn, and is this the right port?`
  }
}

function serverHint(code: number | undefined): string {
  switch (code) {
    case 486:
      return 'allocation quota reached: raise user-quota / total-quota in turnserver.conf'
    case 508:
      return 'no relay ports left: widen min-port..max-port in turnserver.conf (and the firewall)'
    case 403:
      return 'coturn forbids this allocation: check denied-peer-ip and the realm settings'
    case 442:
      return 'coturn refuses UDP relaying: remove no-udp-relay from turnserver.conf'
    default:
      return 'see the coturn log (journalctl -u coturn) for why it refused'
  }
}

function tlsOutcome(r: AllocateResult, t: TurnMetadata): CheckOutcome {
  if (!r.tls || r.tls.authorized) return ok(describeAllocation(r))
  return warn(
    `${describeAllocation(r)}, but the certificate is not valid for ${t.host}: ${r.tls.error ?? 'unknown reason'} (accepted because of --insecure)`,
    `install a certificate valid for ${t.host} in coturn (cert= and pkey=) and restart it`,
  )
}

const UDP_ONLY = 'Delta Chat uses TURN over UDP only'

/**
 * Whether TURN over TCP/TLS is offered at all, asked only of servers this config did not deploy:
 * a TCP connection attempt alongside the allocation. 'open' (or undefined: not asked) means a
 * failed allocation is a failure; anything else means the server does not offer it.
 */
function offeredProbe(ctx: CheckContext, t: TurnMetadata): Promise<Reachability> | undefined {
  if (ctx.options.deployed) return undefined
  return tcpReachable(t.host, t.port, { timeoutMs: Math.max(allocationTimeout(ctx) - 150, 100), signal: ctx.signal })
}

function allocateCheck(transport: TurnTransport): CheckDef['run'] {
  return async (ctx) => {
    const turn = ctx.findings.turn
    const t = target(ctx, transport)
    if (!turn || !t) return skip(NO_CREDENTIALS)
    const advertised = transport === 'tls' ? advertisedTurns(ctx, turn) : undefined
    if (advertised === 'same' && !ctx.options.deployed) {
      return skip(
        `${METADATA_KEYS.turns} names the same server as ${METADATA_KEYS.turn} (${turn.host}:${turn.port}), as Madmail serves it: no TURN over TLS is advertised, and ${UDP_ONLY}`,
      )
    }
    // UDP is what Delta Chat uses; an advertised /turns is offered; the rest may simply not exist.
    const probe = transport === 'udp' || advertised ? undefined : offeredProbe(ctx, t)
    const r = await tryAllocate(ctx, t, transport)
    const where = `${transport.toUpperCase()} ${t.host}:${t.port}`
    if (isTurnError(r)) {
      const reach = await probe
      if (reach && reach !== 'open') {
        const why =
          transport === 'tcp'
            ? 'the server offers TURN over UDP only'
            : `no TURN over TLS is offered (${METADATA_KEYS.turns} is not set)`
        return skip(`${describeUnreachable(reach, `TCP ${t.host}:${t.port}`)}: ${why}; ${UDP_ONLY}`)
      }
      return fail(`${where}: ${r.message}`, hintFor(r, transport, t))
    }
    if (transport === 'tls') return tlsOutcome(r, t)
    return ok(describeAllocation(r))
  }
}

/** Changes one character of a base64 password so it stays valid base64 but is wrong. */
export function tamperPassword(password: string): string {
  const i = password.search(/[A-Za-z0-9+/]/)
  if (i < 0) return `${password}x`
  const c = password[i] === 'A' ? 'B' : 'A'
  return `${password.slice(0, i)}${c}${password.slice(i + 1)}`
}

async function rejectsBadCredentials(ctx: CheckContext): Promise<CheckOutcome> {
  const t = target(ctx, 'udp')
  if (!t) return skip(NO_CREDENTIALS)
  const r = await tryAllocate(ctx, t, 'udp', tamperPassword(t.password))
  if (!isTurnError(r)) {
    return fail(
      `UDP ${t.host}:${t.port} allocated with a forged password (${describeAllocation(r)}): anyone can relay through this server`,
      'turn on authentication in turnserver.conf: use-auth-secret with static-auth-secret, and remove no-auth',
    )
  }
  if (r.kind === 'auth')
    return ok(`a forged password was refused (${r.code === 441 ? '441 Wrong Credentials' : '401 Unauthorized'})`)
  return skip(`inconclusive: ${r.message}`)
}

/** How long ago the credential of turn.rejects-expired-credentials expired: well past any clock skew. */
export const EXPIRED_AGO_SECONDS = 3600

/** A credential signed like the server's own (same `:name` suffix), but expired an hour ago. */
export function expiredCredential(secret: string, handedOut: TurnMetadata, nowMs: number): TurnCredential {
  const suffix = /^\d+(:.*)?$/s.exec(handedOut.username)?.[1]?.slice(1)
  return mintTurnCredential(secret, { ttlSeconds: -EXPIRED_AGO_SECONDS, nowMs, user: suffix })
}

async function rejectsExpiredCredentials(ctx: CheckContext): Promise<CheckOutcome> {
  const t = target(ctx, 'udp')
  if (!t) return skip(NO_CREDENTIALS)
  const secret = ctx.options.turnSecret
  if (!secret) {
    return skip(
      'no TURN secret known, so no expired credential can be signed: pass --turn-secret-file FILE (or run where chatmail.toml is)',
    )
  }
  // A 401 proves something only when our secret is the server's: the handed-out credential says so.
  const own = verifyTurnCredential(secret, t.username, t.password, Date.now())
  if (ctx.findings.turnSource !== 'minted' && !own.ok && own.reason !== 'expired') {
    return skip(
      "inconclusive: the known TURN secret does not sign this server's credentials (see turn.credential.hmac)",
    )
  }
  const expired = expiredCredential(secret, t, Date.now())
  const when = new Date(expired.expires * 1000).toISOString()
  const r = await tryAllocate(ctx, { ...t, ...expired }, 'udp')
  if (!isTurnError(r)) {
    return fail(
      `UDP ${t.host}:${t.port} allocated with a correctly signed credential that expired at ${when} (${describeAllocation(r)}): credentials handed out once work forever`,
      'the TURN server must refuse usernames whose timestamp has passed: coturn with use-auth-secret does; upgrade the TURN server (older Madmail TURN did not check the expiry)',
    )
  }
  if (r.kind === 'auth') return ok(`a credential that expired at ${when} was refused (${r.code ?? 401})`)
  return skip(`inconclusive: ${r.message}`)
}

export const turnChecks: CheckDef[] = [
  {
    id: 'turn.allocate.udp',
    group: 'turn',
    title: 'TURN allocation over UDP',
    after: ['metadata.turn'],
    run: allocateCheck('udp'),
  },
  {
    id: 'turn.allocate.tcp',
    group: 'turn',
    title: 'TURN allocation over TCP',
    after: ['metadata.turn'],
    run: allocateCheck('tcp'),
  },
  {
    id: 'turn.allocate.tls',
    group: 'turn',
    title: 'TURN allocation over TLS',
    // Reads /turns from the shared metadata answers itself: a skipped metadata.turns (absent, or
    // the same as /turn) must not skip this check, which then says why TLS is or is not offered.
    after: ['metadata.turn'],
    run: allocateCheck('tls'),
  },
  {
    id: 'turn.rejects-bad-credentials',
    group: 'turn',
    title: 'TURN refuses forged credentials',
    after: ['metadata.turn'],
    run: rejectsBadCredentials,
  },
  {
    id: 'turn.rejects-expired-credentials',
    group: 'turn',
    title: 'TURN refuses expired credentials',
    after: ['metadata.turn'],
    run: rejectsExpiredCredentials,
  },
]
