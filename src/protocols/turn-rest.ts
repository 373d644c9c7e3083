/**
 * TURN REST credentials (draft-uberti-behave-turn-rest-00, coturn `use-auth-secret`):
 * username = expiry as decimal Unix seconds, optionally `expiry:NAME`;
 * password = standard base64 (with padding) of HMAC-SHA1(secret, username).
 * Pure functions: the clock is an argument.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export interface TurnCredential {
  username: string
  password: string
  /** Unix seconds at which the credential stops being accepted. */
  expires: number
}

export function turnPassword(secret: string | Uint8Array, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64')
}

export function mintTurnCredential(
  secret: string | Uint8Array,
  opts: { ttlSeconds: number; nowMs: number; user?: string | undefined },
): TurnCredential {
  const expires = Math.floor(opts.nowMs / 1000) + opts.ttlSeconds
  const username = opts.user ? `${expires}:${opts.user}` : String(expires)
  return { username, password: turnPassword(secret, username), expires }
}

export type VerifyResult =
  | { ok: true; expires: number; secondsLeft: number }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired'; detail: string; expires?: number }

/** The timestamp part of a REST username (`1700000000` or `1700000000:alice`). */
export function usernameExpiry(username: string): number | undefined {
  const m = /^(\d{1,12})(?::.*)?$/s.exec(username)
  return m ? Number(m[1]) : undefined
}

export function verifyTurnCredential(
  secret: string | Uint8Array,
  username: string,
  password: string,
  nowMs: number,
): VerifyResult {
  const expires = usernameExpiry(username)
  if (expires === undefined) {
    return { ok: false, reason: 'malformed', detail: `username "${username}" does not start with a Unix timestamp` }
  }
  if (!/^[A-Za-z0-9+/]{27}=$/.test(password)) {
    return {
      ok: false,
      reason: 'malformed',
      detail: 'password is not a base64 HMAC-SHA1 (28 characters ending in "=")',
      expires,
    }
  }
  const want = Buffer.from(turnPassword(secret, username))
  const got = Buffer.from(password)
  if (want.length !== got.length || !timingSafeEqual(want, got)) {
    return {
      ok: false,
      reason: 'bad-signature',
      detail: 'password does not match HMAC-SHA1(secret, username)',
      expires,
    }
  }
  const secondsLeft = expires - Math.floor(nowMs / 1000)
  if (secondsLeft <= 0) {
    return { ok: false, reason: 'expired', detail: `expired ${new Date(expires * 1000).toISOString()}`, expires }
  }
  return { ok: true, expires, secondsLeft }
}
