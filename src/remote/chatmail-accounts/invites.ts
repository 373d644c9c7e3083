/**
 * Invite tokens for `registration = invite`: each may create `uses` accounts until it expires.
 * Kept in `<dir>/invites.json` (server data), rewritten durably (temp file, fsync, rename, fsync of
 * the directory) on every change; expired tokens are dropped when it is written (used-up ones stay
 * until they expire, so that a second use is told "used up"). A file that cannot be read as a list
 * of invites is moved aside (`invites.json.damaged-<unix time>`) and reported, and the service runs
 * without those invites instead of failing every login.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from '../lib/log.js'
import { readServerData, writeFileAtomic } from './store.js'

export const INVITES_FILE = 'invites.json'
const TOKEN = /^[A-Za-z0-9_-]{16,64}$/

export interface Invite {
  token: string
  uses: number
  /** Unix seconds. */
  expires: number
  created: number
}

export type Redeem = { ok: true; invite: Invite } | { ok: false; reason: string }

export class InviteStore {
  private readonly path: string
  private invites = new Map<string, Invite>()

  constructor(dir: string, log: Logger = () => {}) {
    this.path = join(dir, INVITES_FILE)
    const list = readServerData(this.path, parseInvites, log)
    for (const i of list ?? []) this.invites.set(i.token, i)
  }

  create(uses: number, ttlSeconds: number, nowMs: number): Invite {
    const now = Math.floor(nowMs / 1000)
    const invite = { token: randomBytes(18).toString('base64url'), uses, expires: now + ttlSeconds, created: now }
    this.invites.set(invite.token, invite)
    this.save(nowMs)
    return invite
  }

  /** Checks a token without using it. */
  check(token: string, nowMs: number): Redeem {
    const invite = TOKEN.test(token) ? this.invites.get(token) : undefined
    if (invite === undefined) return { ok: false, reason: 'this invite is not valid on this server' }
    if (invite.expires * 1000 <= nowMs) return { ok: false, reason: 'this invite has expired' }
    if (invite.uses <= 0) return { ok: false, reason: 'this invite has been used up' }
    return { ok: true, invite }
  }

  /**
   * Checks a token and takes one use of it at once, written before this returns: two requests with
   * a single-use invite never both get it. `giveBack` returns the use when no account came of it.
   */
  take(token: string, nowMs: number): Redeem {
    const checked = this.check(token, nowMs)
    if (!checked.ok) return checked
    checked.invite.uses -= 1
    try {
      this.save(nowMs)
    } catch (err) {
      checked.invite.uses += 1
      throw err
    }
    return checked
  }

  /** Returns a use taken by `take` whose account was not made. */
  giveBack(token: string, nowMs: number): void {
    const invite = this.invites.get(token)
    if (invite === undefined) return
    invite.uses += 1
    this.save(nowMs)
  }

  list(nowMs: number): Invite[] {
    return [...this.invites.values()].filter((i) => i.uses > 0 && i.expires * 1000 > nowMs)
  }

  private save(nowMs: number): void {
    const live = [...this.invites.values()].filter((i) => i.expires * 1000 > nowMs)
    this.invites = new Map(live.map((i) => [i.token, i]))
    writeFileAtomic(this.path, `${JSON.stringify(live, null, 1)}\n`)
  }
}

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0

/** invites.json: a list of invites, each with a valid token and whole numbers; else why not. */
export function parseInvites(text: string): Invite[] | { reason: string } {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    return { reason: `not JSON (${(err as Error).message})` }
  }
  if (!Array.isArray(data)) return { reason: 'not a list' }
  const out: Invite[] = []
  for (const [n, i] of data.entries()) {
    const v = i as Partial<Invite> | null
    if (
      typeof v !== 'object' ||
      v === null ||
      typeof v.token !== 'string' ||
      !TOKEN.test(v.token) ||
      !isCount(v.uses) ||
      !isCount(v.expires) ||
      !isCount(v.created)
    )
      return { reason: `entry ${n + 1} is not an invite` }
    out.push({ token: v.token, uses: v.uses, expires: v.expires, created: v.created })
  }
  return out
}
