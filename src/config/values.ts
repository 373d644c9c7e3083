/**
 * Strict types for config values that end up in server configs (dovecot, postfix, nginx, coturn,
 * the dovecot users file) and on command lines. Each check returns undefined when the value is
 * good, otherwise what is wrong and what is allowed, as the end of a sentence that starts with
 * the key or the flag ("tls.cert must be ...", "--cert must be ..."). Used at load time by the
 * config schema and by `chatmail init` for its flags, so a bad value is refused before anything
 * connects anywhere.
 */
import { isIP, isIPv4 } from 'node:net'
import { addressDomain, canonical } from '../protocols/address.js'
import { checkDomain } from './domain.js'

export type ValueCheck = (value: string) => string | undefined

/** C0 controls, DEL, C1 controls and the Unicode line and paragraph separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

const NAMES: Record<string, string> = {
  '\n': 'a newline',
  '\r': 'a carriage return',
  '\t': 'a tab',
  '\u001b': 'an escape',
}

/** Where the first control character is, named; undefined when there is none. */
export function controlCharacter(value: string): string | undefined {
  const m = CONTROL.exec(value)
  if (!m) return undefined
  const ch = m[0]
  const code = `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`
  return `${NAMES[ch] ?? 'a control character'} (${code}) at position ${m.index + 1}`
}

export const noControl: ValueCheck = (value) => {
  const found = controlCharacter(value)
  return found ? `must not contain control characters; found ${found}` : undefined
}

const PATH_SEGMENT = /^[A-Za-z0-9._@+=,:~-]+$/

/** An absolute, normalized path on the host, of characters no config syntax treats specially. */
export const hostPath: ValueCheck = (value) => {
  const bad =
    'must be an absolute path on the host made of letters, digits and . _ - + @ = , : ~ ' +
    '(no spaces, quotes, "." or ".." parts, or control characters), e.g. /etc/ssl/private/mail.key'
  if (!value.startsWith('/') || value.length > 4096) return bad
  const parts = value.slice(1).split('/')
  if (parts.some((p) => p === '.' || p === '..' || !PATH_SEGMENT.test(p))) return bad
  return undefined
}

const URL_CHARS = /^[A-Za-z0-9\-._~:/?[\]@!$&()*+,;=%]+$/

/** An absolute URL with one of `schemes`, anchored: the text itself starts with `scheme://host`. */
export function urlOf(schemes: readonly ('http' | 'https')[]): ValueCheck {
  const start = new RegExp(`^(${schemes.join('|')})://[^/?#@:]`)
  const allowed = schemes.map((s) => `${s}://`).join(' or ')
  return (value) => {
    if (!start.test(value)) return `must be a URL that starts with ${allowed} and a host name`
    if (!URL_CHARS.test(value) || value.length > 2048) {
      return 'must be a URL without spaces, quotes, "#", non-ASCII or control characters (percent-encode them)'
    }
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return `must be a valid ${allowed} URL`
    }
    if (url.username !== '' || url.password !== '') return 'must not contain a user name or password'
    if (url.hostname === '') return 'must name a host'
    return undefined
  }
}

const LOCAL_PART = /^[A-Za-z0-9._%+-]{1,64}$/

/** An e-mail address: local part of letters, digits and . _ % + -, then a domain name. */
export const emailAddress: ValueCheck = (value) => {
  const bad = 'must be an e-mail address such as admin@example.org (letters, digits and . _ % + - before the @)'
  const at = value.lastIndexOf('@')
  if (at <= 0 || !LOCAL_PART.test(value.slice(0, at))) return bad
  const domain = value.slice(at + 1)
  const d = checkDomain(domain)
  if (!d.ok || d.kind !== 'fqdn' || domain !== domain.trim() || domain.endsWith('.')) return bad
  return undefined
}

/**
 * An address on the server's own domain (the dovecot users file takes it as the login). On an
 * IP-only server `user@[IP]` (the canonical form) and `user@IP` both are.
 */
export function addressOn(domain: string): ValueCheck {
  return (value) => {
    const bad = `must be an address on ${domain}, e.g. doctor@${addressDomain(domain)} (letters, digits and . _ + - before the @)`
    const at = value.lastIndexOf('@')
    if (at <= 0 || !/^[A-Za-z0-9._+-]{1,64}$/.test(value.slice(0, at))) return bad
    if (canonical(value, domain) === undefined) return bad
    return undefined
  }
}

/**
 * An address of ours as the server spells it: on an IP-only server `user@IP` becomes the address
 * literal `user@[IP]` (postfix delivers to that form, and accounts are kept under it). Other
 * addresses are returned as they are.
 */
export function serverAddress(address: string, domain: string): string {
  if (!isIPv4(domain)) return address
  return canonical(address, domain)?.address ?? address
}

/** A host name clients can use (an FQDN or IPv4 address, as for the domain). */
export const hostName: ValueCheck = (value) => {
  const d = checkDomain(value)
  if (!d.ok) return `must be a fully qualified host name or an IPv4 address: ${d.reason}`
  if (value !== value.trim()) return 'must not have spaces around it'
  return undefined
}

const ip = (s: string): 0 | 4 | 6 => (s.includes('%') ? 0 : (isIP(s) as 0 | 4 | 6))

/** coturn's external-ip: an IP address, or "public/private" when the host is behind NAT. */
export const externalIp: ValueCheck = (value) => {
  const bad =
    'must be an IP address, or "public/private" when the host is behind NAT (e.g. "203.0.113.5" or "203.0.113.5/10.0.0.5")'
  const parts = value.split('/')
  if (parts.length > 2) return bad
  const families = parts.map(ip)
  if (families.some((f) => f === 0)) return bad
  if (families.length === 2 && families[0] !== families[1]) return `${bad}; both of the same family`
  return undefined
}

/** Runs checks in order; the first complaint wins. Control characters are always checked first. */
export function checkValue(value: string, ...checks: ValueCheck[]): string | undefined {
  for (const check of [noControl, ...checks]) {
    const why = check(value)
    if (why) return why
  }
  return undefined
}
