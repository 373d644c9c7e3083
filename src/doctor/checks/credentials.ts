/** The credentials group: are the TURN credentials the server hands out signed right and fresh? */
import type { TurnMetadata } from '../../protocols/metadata-values.js'
import { verifyTurnCredential } from '../../protocols/turn-rest.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'

/** chatmail-turn's hard-coded secret: anyone can mint credentials for a server that uses it. */
export const PUBLIC_CHATMAIL_TURN_SECRET = 'north'
/** Delta Chat core asks for new credentials when fewer than 12 hours are left. */
export const CORE_REFRESH_SECONDS = 12 * 3600

const MINTED = 'the credentials were minted here for --turn, not handed out by the server'

const hours = (s: number) => `${(s / 3600).toFixed(1)} h`

export function judgeHmac(username: string, password: string, secret: string | undefined, nowMs: number): CheckOutcome {
  const withPublic = verifyTurnCredential(PUBLIC_CHATMAIL_TURN_SECRET, username, password, nowMs)
  if (withPublic.ok || withPublic.reason === 'expired') {
    return fail(
      `the password is signed with "${PUBLIC_CHATMAIL_TURN_SECRET}", the public secret of chatmail-turn: anyone can use this TURN server`,
      'give the TURN server and the metadata service a private secret (turn.secret from `chatmail init`, coturn static-auth-secret) and deploy again',
    )
  }
  if (!secret) return skip('no TURN secret known: pass --turn-secret-file FILE (or run where chatmail.toml is)')
  const res = verifyTurnCredential(secret, username, password, nowMs)
  if (res.ok || res.reason === 'expired') return ok('password = base64(HMAC-SHA1(secret, username))')
  return fail(
    `the password does not verify with the TURN secret: ${res.detail}`,
    res.reason === 'malformed'
      ? 'the metadata service must hand out username = Unix expiry, password = base64(HMAC-SHA1(secret, username))'
      : "the metadata service and the TURN server use different secrets (or --turn-secret-file is not this server's): make turn.secret in chatmail.toml, the metadata service and coturn's static-auth-secret the same",
  )
}

export function judgeExpiry(expires: number, nowMs: number): CheckOutcome {
  const left = expires - Math.floor(nowMs / 1000)
  const when = new Date(expires * 1000).toISOString()
  if (left <= 0) {
    return fail(
      `the credentials expired at ${when}: TURN servers reject them`,
      'the metadata service must mint fresh credentials on every lookup: check that it runs and that the server clock is right (timedatectl)',
    )
  }
  if (left < CORE_REFRESH_SECONDS) {
    return warn(
      `the credentials expire in ${hours(left)} (${when}); Delta Chat refreshes them when under 12 h are left, so it asks on every connection`,
      'raise turn.ttl above 12h (the default is 24h) and deploy again',
    )
  }
  return ok(`valid for ${hours(left)}, until ${when}`)
}

/** The credentials the server handed out, or why there are none to judge. */
function serverTurn(ctx: CheckContext): TurnMetadata | CheckOutcome {
  if (!ctx.findings.turn) return skip('no TURN credentials found')
  if (ctx.findings.turnSource === 'minted') return skip(MINTED)
  return ctx.findings.turn
}

const isOutcome = (v: TurnMetadata | CheckOutcome): v is CheckOutcome => 'status' in v

export const credentialChecks: CheckDef[] = [
  {
    id: 'turn.credential.hmac',
    group: 'credentials',
    title: 'TURN credential signature',
    after: ['metadata.turn'],
    run: async (ctx) => {
      const turn = serverTurn(ctx)
      return isOutcome(turn) ? turn : judgeHmac(turn.username, turn.password, ctx.options.turnSecret, Date.now())
    },
  },
  {
    id: 'turn.credential.expiry',
    group: 'credentials',
    title: 'TURN credential expiry',
    after: ['metadata.turn'],
    run: async (ctx) => {
      const turn = serverTurn(ctx)
      return isOutcome(turn) ? turn : judgeExpiry(turn.expires, Date.now())
    },
  },
]
