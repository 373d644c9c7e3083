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
  const local = input.slice(0, at).toLowerCase()
  const dom = input.slice(at + 1).toLowerCase()
  const ours = addressDomain(domain)
  const ip = isIPv4(domain)
  if (dom !== ours && !(ip && dom === domain)) return undefined
  if (/[\s"\\<>@\x00-\x1f\x7f]/.test(local)) return undefined
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
  if ([...password].length < rules.passwordMinLength) {
    return { ok: false, reason: `the password must be at least ${rules.passwordMinLength} characters` }
  }
  return { ok: true, parsed }
}

/** The directory of a mailbox below the mail root: `<root>/<domain without brackets>/<local>`. */
export function mailHome(root: string, parsed: Parsed, domain: string): string {
  return `${root}/${domain.toLowerCase()}/${parsed.local}`
}
