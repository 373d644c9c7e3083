/**
 * The account logic: first-login creation (dovecot passdb), mailbox lookups (dovecot userdb,
 * postfix), and the sign-up endpoint's fresh accounts. No I/O of its own but the store's.
 */
import { randomBytes, randomInt } from 'node:crypto'
import { isIPv4 } from 'node:net'
import {
  canonical,
  mailHome,
  mayCreate,
  type Parsed,
  RESERVED_LOCAL_PARTS,
  type Rules,
} from '../../protocols/address.js'
import type { Logger } from '../lib/log.js'
import type { InviteStore } from './invites.js'
import type { LastLogins } from './lastlogin.js'
import { type RateLimiter, type Resources, resourceProblem } from './limits.js'
import type { Ownership } from './owners.js'
import { hashPassword, verifyPassword } from './password.js'
import type { AccountStore } from './store.js'

export type Registration = 'open' | 'closed' | 'invite'

export interface Policy {
  rules: Rules
  registration: Registration
  minFreeDisk: number
  minAvailableMemory: number
  pbkdf2Rounds: number
  mailRoot: string
  /** Self-signed TLS: /new also returns a dclogin: URL that accepts the certificate. */
  selfSigned: boolean
}

export interface Deps {
  store: AccountStore
  lastLogins: LastLogins
  invites: InviteStore
  /** Addresses of the passdbs dovecot asks before this service (owners.ts): never ours to create. */
  owners: { owner(address: string): Ownership; hasMailbox(address: string): boolean }
  /** Replaced on a reload that changes the limit. */
  limiter: RateLimiter
  resources(): Resources
  log: Logger
  now(): number
}

/** An account the expiry removed, and the mailbox directory that goes with it. */
export interface Expired {
  address: string
  home: string
}

/** dovecot passdb fields (JSON), or undefined: no such user. */
export type PassdbReply = Record<string, string> | undefined

export type Signup =
  | { ok: true; email: string; password: string; dcloginUrl?: string }
  | { ok: false; status: number; reason: string }

const UNKNOWN_OWNERS = 'the server cannot create accounts right now: try again later'

const PASSWORD_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const LOCAL_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789'

/**
 * PBKDF2 rounds of the hash of a password this service drew itself for /new: 22 or more of 62
 * characters, at least 131 random bits. Rounds make guessing a password a person chose dearer;
 * nobody guesses 131 random bits, so one round (a salted HMAC-SHA-1, still dovecot's PBKDF2
 * scheme) keeps such a password as safe as any count would (NIST SP 800-63B asks for a key
 * derivation function only below 112 bits). Every later login of the account, each reconnect of
 * each of its devices, then verifies in microseconds instead of milliseconds of the server's CPU.
 */
export const DRAWN_PASSWORD_ROUNDS = 1

function randomText(chars: string, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += chars[randomInt(chars.length)]
  return s
}

/**
 * Services whose login process enforces `nologin`: for them a refusal is "any password verifies,
 * then nologin refuses with the reason", which the client shows. Any other asker — postfix's SASL
 * (service smtp) above all — gets "no such account": postfix ignores `nologin` and would take the
 * OK as a successful login with any password.
 */
const NOLOGIN_SERVICES = new Set(['imap'])

/**
 * What dovecot gets back for a wrong password: a plain value that no password matches, so that it
 * refuses without hashing anything (given the stored hash, it ran PBKDF2 again, in its own slower
 * code, for every wrong guess).
 */
function wrongPassword(): string {
  return `{PLAIN}${randomBytes(24).toString('hex')}`
}

function refusal(reason: string, service: string): PassdbReply {
  return NOLOGIN_SERVICES.has(service) ? { nopassword: 'y', nologin: 'y', reason } : undefined
}

export class Accounts {
  /** Creations under way, so that concurrent first logins (IMAP and SMTP at once) create once. */
  private readonly pending = new Map<string, Promise<string>>()

  constructor(
    public policy: Policy,
    private readonly deps: Deps,
  ) {}

  get count(): number {
    return this.deps.store.size
  }

  /**
   * The passdb reply for a login whose password this service has judged: the password as given when
   * it matched (dovecot compares it, no second hash), else one that never matches.
   */
  private judged(parsed: Parsed, login: string, password: string, match: boolean): Record<string, string> {
    const reply = match ? `{PLAIN}${password}` : wrongPassword()
    return login === parsed.address ? { password: reply } : { password: reply, user: parsed.address }
  }

  /** Why no account may be created now (server-wide), or undefined. */
  private blocked(client: string): { status: number; reason: string } | undefined {
    const problem = resourceProblem(this.deps.resources(), this.policy.minFreeDisk, this.policy.minAvailableMemory)
    if (problem) return { status: 503, reason: problem }
    if (!this.deps.limiter.take(client || 'unknown', this.deps.now())) {
      return { status: 429, reason: 'too many new accounts from your address: try again later' }
    }
    return undefined
  }

  /**
   * Creates the account with this password. Resolves with the stored hash, and `mine` when this
   * call's password made the account (not a concurrent creation of the same address).
   */
  private create(parsed: Parsed, password: string, rounds: number): Promise<{ hash: string; mine: boolean }> {
    const p = this.pending.get(parsed.address)
    if (p) return p.then((hash) => ({ hash, mine: false }))
    let mine = false
    const created = hashPassword(password, rounds)
      .then((hash) => {
        const existing = this.deps.store.get(parsed.address)
        if (existing) return existing.hash
        this.deps.store.add({ address: parsed.address, hash, created: Math.floor(this.deps.now() / 1000) })
        this.deps.log('info', `created account ${parsed.address}`)
        mine = true
        return hash
      })
      .finally(() => this.pending.delete(parsed.address))
    this.pending.set(parsed.address, created)
    return created.then((hash) => ({ hash, mine }))
  }

  /**
   * dovecot passdb lookup for a login (IMAP, or SMTP submission through dovecot's SASL); `service`
   * is dovecot's service name of the login (imap, smtp, ...).
   */
  async passdb(login: string, password: string, client: string, service: string): Promise<PassdbReply> {
    const parsed = canonical(login, this.policy.rules.domain)
    if (parsed === undefined) return undefined
    // Another passdb's address reaches this one only when that passdb refused the password: no
    // such account here, whatever this service's own file says (an account made by that very
    // mistake before it was mended included).
    const owner = this.deps.owners.owner(parsed.address)
    if (owner === 'theirs') return undefined
    const existing = this.deps.store.get(parsed.address)
    // Verified here (OpenSSL's PBKDF2, in the thread pool, several at once: about 4x faster than
    // dovecot's own), and only here.
    if (existing) return this.judged(parsed, login, password, await verifyPassword(password, existing.hash))
    const pending = this.pending.get(parsed.address)
    if (pending) return this.judged(parsed, login, password, await verifyPassword(password, await pending))
    if (this.policy.registration === 'closed') return refusal('registration is closed on this server', service)
    if (this.deps.store.isExpiring(parsed.address))
      return refusal(
        'this address was deleted for inactivity and its mailbox is being removed: try again later',
        service,
      )
    if (this.policy.registration === 'invite') {
      return refusal('new accounts on this server need an invite link', service)
    }
    const verdict = mayCreate(login, password, this.policy.rules)
    if (!verdict.ok) return refusal(`cannot create this account: ${verdict.reason}`, service)
    if (owner === 'unknown') return refusal(UNKNOWN_OWNERS, service)
    const blocked = this.blocked(client)
    if (blocked) {
      this.deps.log('warn', `refused to create ${parsed.address} for ${client || 'unknown'}: ${blocked.reason}`)
      return refusal(blocked.reason, service)
    }
    const { hash, mine } = await this.create(parsed, password, this.policy.pbkdf2Rounds)
    // The account was just made from this very password: no second hash to check it. A concurrent
    // first login of the same address with another password made it: this one is checked.
    return this.judged(parsed, login, password, mine || (await verifyPassword(password, hash)))
  }

  /** dovecot userdb lookup: the mailbox of an existing account. */
  userdb(login: string): Record<string, string> | undefined {
    const parsed = canonical(login, this.policy.rules.domain)
    if (parsed === undefined || !this.deps.store.get(parsed.address)) return undefined
    if (this.deps.owners.owner(parsed.address) === 'theirs') return undefined
    const home = mailHome(this.policy.mailRoot, parsed, this.policy.rules.domain)
    return login === parsed.address ? { home } : { home, user: parsed.address }
  }

  /** dovecot's last_login plugin: `login` logged in successfully now. */
  recordLogin(login: string): void {
    const parsed = canonical(login, this.policy.rules.domain)
    if (parsed === undefined || !this.deps.store.get(parsed.address)) return
    this.deps.lastLogins.record(parsed.address, Math.floor(this.deps.now() / 1000))
  }

  /**
   * The expiry of inactive accounts, first step: the accounts whose last login (or, never logged
   * in, their creation) is older than `cutoff` (unix seconds) leave the accounts file and the login
   * record and go on the store's expiring list. Returns every address on that list (with those an
   * expiry cut off half-way left there) with its mailbox directory: the caller deletes those, then
   * calls `mailboxesDeleted`. Throws, removing nothing, when the file cannot be rewritten.
   */
  expireInactive(cutoff: number): Expired[] {
    const store = this.deps.store
    const inactive: string[] = []
    for (const a of store.list()) {
      if (this.pending.has(a.address)) continue
      const last = Math.max(a.created, this.deps.lastLogins.get(a.address) ?? 0)
      if (last < cutoff) inactive.push(a.address)
    }
    // On the list and still an account: the last run stopped between the two files, and the
    // account has logged in since; it stays, and so does its mailbox.
    const kept = store.expiringList().filter((a) => store.get(a) && !inactive.includes(a))
    store.forgetExpired(kept)
    store.remove(inactive)
    this.deps.lastLogins.delete(inactive)
    for (const a of inactive) this.deps.log('info', `deleted inactive account ${a}`)
    const expired: Expired[] = []
    const foreign: string[] = []
    for (const address of store.expiringList()) {
      const parsed = canonical(address, this.policy.rules.domain)
      // Another domain (the config changed): no mailbox of it here.
      if (parsed === undefined) foreign.push(address)
      else {
        // The mailbox of another passdb's address is that account's (an account of ours by the
        // same name was a mistake: made before such addresses were refused): never deleted here.
        // Not known now: it stays on the list for the next run.
        const owner = this.deps.owners.owner(parsed.address)
        if (owner === 'theirs') foreign.push(address)
        else if (owner === 'ours')
          expired.push({ address, home: mailHome(this.policy.mailRoot, parsed, this.policy.rules.domain) })
      }
    }
    store.forgetExpired(foreign)
    return expired
  }

  /** The expiry's second step: the mailboxes of these expired accounts are gone; their addresses are free again. */
  mailboxesDeleted(addresses: string[]): void {
    this.deps.store.forgetExpired(addresses)
  }

  /**
   * Whether mail to this address has a mailbox (postfix's recipient check): an account here, or
   * one of another passdb's that dovecot's passwd-file userdb finds (its line has uid and gid
   * fields). The same bytes dovecot's LMTP looks up: canonical() folds ASCII case only.
   */
  exists(address: string): boolean {
    const parsed = canonical(address, this.policy.rules.domain)
    if (parsed === undefined) return false
    const owner = this.deps.owners.owner(parsed.address)
    if (owner === 'theirs') return this.deps.owners.hasMailbox(parsed.address)
    return this.deps.store.get(parsed.address) !== undefined
  }

  /** POST /new: a fresh address and password, created at once. */
  async signup(client: string, token: string | undefined): Promise<Signup> {
    const mode = this.policy.registration
    if (mode === 'closed') return { ok: false, status: 403, reason: 'registration is closed on this server' }
    const nowMs = this.deps.now()
    let reserved: string | undefined
    if (mode === 'invite') {
      if (!token) return { ok: false, status: 403, reason: 'new accounts on this server need an invite link' }
      // Taken now, before any await: concurrent requests with one invite each take their own use.
      const taken = this.deps.invites.take(token, nowMs)
      if (!taken.ok) return { ok: false, status: 403, reason: taken.reason }
      reserved = token
    }
    try {
      const made = await this.fresh(client)
      if (!made.ok) {
        if (reserved) this.deps.invites.giveBack(reserved, this.deps.now())
        return made
      }
      reserved = undefined
      const { email, password } = made
      return this.policy.selfSigned
        ? { ok: true, email, password, dcloginUrl: dcloginUrl(email, password, this.policy.rules.domain) }
        : made
    } catch (err) {
      if (reserved) this.deps.invites.giveBack(reserved, this.deps.now())
      throw err
    }
  }

  /** A new account with a drawn address and password, when the server may make one now. */
  private async fresh(client: string): Promise<Signup> {
    const blocked = this.blocked(client)
    if (blocked) return { ok: false, ...blocked }
    const rules = this.policy.rules
    const password = randomText(PASSWORD_CHARS, Math.max(22, rules.passwordMinLength))
    let parsed: Parsed | undefined
    for (let i = 0; i < 10 && parsed === undefined; i++) {
      const candidate = canonical(`${randomText(LOCAL_CHARS, rules.localMaxLength)}@${rules.domain}`, rules.domain)
      if (candidate === undefined || RESERVED_LOCAL_PARTS.has(candidate.local)) continue
      const owner = this.deps.owners.owner(candidate.address)
      if (owner === 'unknown') return { ok: false, status: 503, reason: UNKNOWN_OWNERS }
      if (
        owner === 'ours' &&
        !this.deps.store.get(candidate.address) &&
        !this.deps.store.isExpiring(candidate.address) &&
        !this.pending.has(candidate.address)
      )
        parsed = candidate
    }
    if (parsed === undefined) return { ok: false, status: 503, reason: 'could not find a free address: try again' }
    await this.create(parsed, password, DRAWN_PASSWORD_ROUNDS)
    return { ok: true, email: parsed.address, password }
  }
}

/**
 * A `dclogin:` URL (Delta Chat core's qr/dclogin_scheme) that logs in with certificate checks off
 * (`ic=3`); for an IP-only server it names the IP as IMAP and SMTP host, since `[IP]` is no host name.
 */
export function dcloginUrl(email: string, password: string, domain: string): string {
  const hosts = isIPv4(domain) ? `&ih=${domain}&sh=${domain}` : ''
  const addr = encodeURIComponent(email).replace(/%40/g, '@').replace(/%5B/g, '[').replace(/%5D/g, ']')
  return `dclogin:${addr}?p=${encodeURIComponent(password)}&v=1${hosts}&ic=3`
}
