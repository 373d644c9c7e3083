/**
 * The values Delta Chat reads from IMAP METADATA, formatted and parsed exactly as chatmail/core
 * does (src/calls.rs create_ice_servers_from_metadata): one entry `host:port:timestamp:password`,
 * split on the first three ':' — so a bare IPv6 host cannot be expressed.
 */

export const METADATA_KEYS = {
  irohrelay: '/shared/vendor/deltachat/irohrelay',
  turn: '/shared/vendor/deltachat/turn',
  turns: '/shared/vendor/deltachat/turns',
  admin: '/shared/admin',
  comment: '/shared/comment',
  maxsmtprecipients: '/shared/vendor/deltachat/maxsmtprecipients',
} as const

export interface TurnMetadata {
  host: string
  port: number
  /** The TURN username; Delta Chat core also takes it as the expiry. */
  username: string
  expires: number
  password: string
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string }

/** Rust's `u16::from_str` / `i64::from_str`: optional sign, ASCII digits. */
const U16 = /^\+?\d+$/
const I64 = /^[+-]?\d+$/

export function parseTurnMetadata(value: string): ParseResult<TurnMetadata> {
  const i1 = value.indexOf(':')
  if (i1 < 0) return { ok: false, reason: 'missing hostname (no ":" in the value)' }
  const host = value.slice(0, i1)
  const r1 = value.slice(i1 + 1)
  const i2 = r1.indexOf(':')
  if (i2 < 0) return { ok: false, reason: 'missing port' }
  const portText = r1.slice(0, i2)
  const r2 = r1.slice(i2 + 1)
  if (!U16.test(portText) || Number(portText) > 65535) {
    return { ok: false, reason: `port "${portText}" is not a number from 0 to 65535` }
  }
  const i3 = r2.indexOf(':')
  if (i3 < 0) return { ok: false, reason: 'missing timestamp' }
  const ts = r2.slice(0, i3)
  const password = r2.slice(i3 + 1)
  if (!I64.test(ts) || !Number.isSafeInteger(Number(ts))) {
    return { ok: false, reason: `timestamp "${ts}" is not an integer (core uses the username as the expiry)` }
  }
  if (host === '') return { ok: false, reason: 'hostname is empty' }
  if (host.startsWith('[')) {
    return { ok: false, reason: `host "${host}..." looks like a bracketed IPv6 address, which core cannot parse` }
  }
  return { ok: true, value: { host, port: Number(portText), username: ts, expires: Number(ts), password } }
}

export function isBareIpv6(host: string): boolean {
  return host.includes(':')
}

/** Render the metadata value; refuses what core would misparse. */
export function formatTurnMetadata(host: string, port: number, username: string, password: string): string {
  if (isBareIpv6(host) || host.startsWith('[')) {
    throw new Error(
      `host ${host} is an IPv6 address: Delta Chat splits the value on ':' and cannot parse it; use a DNS name`,
    )
  }
  if (!/^\d+$/.test(username)) {
    throw new Error(`username ${username} is not a pure timestamp: Delta Chat needs host:port:timestamp:password`)
  }
  return `${host}:${port}:${username}:${password}`
}

/** Core parses the irohrelay value with `Url::parse`; we accept http(s) URLs with a host. */
export function parseIrohRelayUrl(value: string): ParseResult<URL> {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return { ok: false, reason: `"${value}" is not a URL` }
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { ok: false, reason: `scheme ${url.protocol} is not http or https` }
  }
  if (!url.hostname) return { ok: false, reason: 'URL has no host' }
  return { ok: true, value: url }
}
