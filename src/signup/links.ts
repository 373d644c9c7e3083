/**
 * Sign-up links and their QR codes (Delta Chat core's `dcaccount:` scheme, qr.rs): scanning
 * `dcaccount:https://DOMAIN/new` makes core POST there and log in with the address and password
 * the server returns. An invite adds `?i=TOKEN`, which core keeps in the URL it POSTs to.
 */
import { isIPv4 } from 'node:net'
import { renderSVG, renderUnicodeCompact } from 'uqr'
import type { Config } from '../config/schema.js'

export function signupUrl(domain: string, token?: string): string {
  return `https://${domain}/new${token ? `?i=${encodeURIComponent(token)}` : ''}`
}

export function dcaccountLink(domain: string, token?: string): string {
  return `dcaccount:${signupUrl(domain, token)}`
}

/** Whether the server's certificate is self-signed (an IP-only server's always is). */
export function selfSignedTls(c: Config): boolean {
  return c.tls.mode === 'self-signed' || isIPv4(c.domain)
}

/**
 * Whether core's own sign-up (`dcaccount:`, strict certificate checks) cannot reach the server: a
 * self-signed one, unless its name starts with `_`. For such names core (since 2.46,
 * src/net/tls/danger.rs) skips the chain check and still checks that the certificate names the
 * host, as chatmail relays on `_` domains expect: no public CA issues a certificate for a name
 * that starts with `_`, so a self-signed one is all such a server can have.
 */
export function needsDclogin(c: Config): boolean {
  return isIPv4(c.domain) || (c.tls.mode === 'self-signed' && !c.domain.startsWith('_'))
}

/**
 * The link a person signs up with: `dcaccount:` (core POSTs to /new itself), or on a self-signed
 * server the sign-up page, which asks /new and hands Delta Chat a `dclogin:` link that accepts the
 * certificate. An invite token rides along either way.
 */
export function signupLink(c: Config, token?: string): string {
  if (!needsDclogin(c)) return dcaccountLink(c.domain, token)
  return `https://${c.domain}/${token ? `?i=${encodeURIComponent(token)}` : ''}`
}

/** An SVG QR code (for the web page, rendered at deploy time). */
export function qrSvg(text: string): string {
  return renderSVG(text, { border: 2 })
}

/** A QR code in half-block characters, for a terminal. */
export function qrTerminal(text: string): string {
  return renderUnicodeCompact(text, { border: 2 })
}
