/**
 * Addresses on this server, and the rules a new one must follow. Pure.
 *
 * An IP-only server's addresses are RFC 5321 address literals, `user@[203.0.113.5]`: that is the
 * form postfix, other MTAs and chatmail relays use, and Delta Chat core's parser accepts both it and
 * `user@203.0.113.5`. Logins and lookups in either form map to the bracketed one (the canonical
 * address, the key of the account store).
 */
import { isIPv4 } from 'node:net'

export interface Rules {
  /** The mail domain: a DNS name or an IPv4 address (bare). */
  domain: string
  localMinLength: number
  localMaxLength: number
  passwordMinLength: number
}

/** Characters of a local part we create (what chatmail relays allow). */
const LOCAL_PART = /^[a-z0-9._-]+$/

/**
 * Local parts nobody may create: the role addresses of RFC 2142 and the CA/Browser Forum's
 * Baseline Requirements (3.2.2.4.4: the addresses a CA may mail to prove control of a domain),
 * the mail system's own (RFC 5321 postmaster, mailer-daemon, root), and names of this server's
 * parts. Whoever holds one of these could receive a certificate approval, abuse reports or
 * bounces meant for the operator.
 */
export const RESERVED_LOCAL_PARTS: ReadonlySet<string> = new Set([
  // RFC 2142
  'info',
  'marketing',
  'sales',
  'support',
  'abuse',
  'noc',
  'security',
  'postmaster',
  'hostmaster',
  'usenet',
  'news',
  'webmaster',
  'www',
  'uucp',
  'ftp',
  // CA/B Forum Baseline Requirements 3.2.2.4.4
  'admin',
  'administrator',
  // the mail system and the host
  'mailer-daemon',
  'root',
  'nobody',
  'noreply',
  'no-reply',
  'daemon',
  'vmail',
  'dmarc',
  'mta-sts',
  'autoconfig',
  'doctor',
])

/**
 * A local part that is one safe name of a directory and a dot-atom (RFC 5322 3.2.3): no dot at
 * either end, no two dots in a row. `.` and `..` would name the mail root itself or its parent.
 */
function dotAtom(local: string): boolean {
  return !local.startsWith('.') && !local.endsWith('.') && !local.includes('..')
}

/**
 * ASCII-only lower case, as dovecot's `%Lu` / `%{user | lower}` and postfix fold: JavaScript's
 * `toLowerCase` also folds other scripts (the Kelvin sign U+212A becomes `k`), so a lookup would
 * find an account that dovecot's own lookup of the same bytes never does.
 */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase())
}

/** The domain as it appears in addresses: `[IP]` for an IP-only server. */
export function addressDomain(domain: string): string {
  return isIPv4(domain) ? `[${domain}]` : domain.toLowerCase()
}

export interface Parsed {
  local: string
  /** The canonical address, `local@addressDomain`. */
  address: string
}

/**
 * The canonical form of `input` when it is an address on our domain (any case; for an IP-only
 * server with or without brackets), else undefined.
 */
export function canonical(input: string, domain: string): Parsed | undefined {
  const at = input.lastIndexOf('@')
  if (at <= 0) return undefined
  // Only printable ASCII: a byte beyond it is no address of ours (none is created with one), and
  // must not fold onto one that is.
  if (!/^[\x21-\x7e]+$/.test(input)) return undefined
  const local = asciiLower(input.slice(0, at))
  const dom = asciiLower(input.slice(at + 1))
  const ours = addressDomain(domain)
  const ip = isIPv4(domain)
  if (dom !== ours && !(ip && dom === domain)) return undefined
  if (/["\\<>@/]/.test(local) || local === '.' || local === '..') return undefined
  return { local, address: `${local}@${ours}` }
}

export type Verdict = { ok: true; parsed: Parsed } | { ok: false; reason: string }

/** Whether a first login (or the sign-up endpoint) may create this address with this password. */
export function mayCreate(input: string, password: string, rules: Rules): Verdict {
  const parsed = canonical(input, rules.domain)
  if (parsed === undefined) return { ok: false, reason: `not an address on ${addressDomain(rules.domain)}` }
  const n = parsed.local.length
  if (n < rules.localMinLength || n > rules.localMaxLength) {
    const want =
      rules.localMinLength === rules.localMaxLength
        ? `${rules.localMinLength} characters`
        : `${rules.localMinLength} to ${rules.localMaxLength} characters`
    return { ok: false, reason: `the part before @ must be ${want}` }
  }
  if (!LOCAL_PART.test(parsed.local)) {
    return { ok: false, reason: 'the part before @ may only hold a-z, 0-9, dot, dash and underscore' }
  }
  if (!dotAtom(parsed.local)) {
    return { ok: false, reason: 'the part before @ may not start or end with a dot, or hold two in a row' }
  }
  if (RESERVED_LOCAL_PARTS.has(parsed.local)) {
    return { ok: false, reason: `${parsed.local}@ is reserved on this server` }
  }
  if ([...password].length < rules.passwordMinLength) {
    return { ok: false, reason: `the password must be at least ${rules.passwordMinLength} characters` }
  }
  return { ok: true, parsed }
}

/** The directory of a mailbox below the mail root: `<root>/<domain without brackets>/<local>`. */
export function mailHome(root: string, parsed: Parsed, domain: string): string {
  return `${root}/${domain.toLowerCase()}/${parsed.local}`
}
