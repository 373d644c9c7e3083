/**
 * Invite tokens for `registration = invite`: each may create `uses` accounts until it expires.
 * Kept in `<dir>/invites.json` (server data), rewritten atomically (temp file + rename) on every
 * change; expired tokens are dropped when it is written (used-up ones stay until they expire, so
 * that a second use is told "used up").
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

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

  constructor(dir: string) {
    this.path = join(dir, INVITES_FILE)
    if (existsSync(this.path)) {
      const list = JSON.parse(readFileSync(this.path, 'utf8')) as Invite[]
      for (const i of list) if (TOKEN.test(i.token)) this.invites.set(i.token, i)
    }
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

  /** Uses a token once (after check() and the account's creation). */
  use(token: string, nowMs: number): void {
    const invite = this.invites.get(token)
    if (invite === undefined) return
    invite.uses -= 1
    this.save(nowMs)
  }

  list(nowMs: number): Invite[] {
    return [...this.invites.values()].filter((i) => i.uses > 0 && i.expires * 1000 > nowMs)
  }

  private save(nowMs: number): void {
    const live = [...this.invites.values()].filter((i) => i.expires * 1000 > nowMs)
    this.invites = new Map(live.map((i) => [i.token, i]))
    const tmp = `${this.path}.tmp`
    writeFileSync(tmp, `${JSON.stringify(live, null, 1)}\n`, { mode: 0o600 })
    renameSync(tmp, this.path)
  }
}
