/**
 * Sign-up links and their QR codes (Delta Chat core's `dcaccount:` scheme, qr.rs): scanning
 * `dcaccount:https://DOMAIN/new` makes core POST there and log in with the address and password
 * the server returns. An invite adds `?i=TOKEN`, which core keeps in the URL it POSTs to.
 */
import { renderSVG, renderUnicodeCompact } from 'uqr'

export function signupUrl(domain: string, token?: string): string {
  return `https://${domain}/new${token ? `?i=${encodeURIComponent(token)}` : ''}`
}

export function dcaccountLink(domain: string, token?: string): string {
  return `dcaccount:${signupUrl(domain, token)}`
}

/** An SVG QR code (for the web page, rendered at deploy time). */
export function qrSvg(text: string): string {
  return renderSVG(text, { border: 2 })
}

/** A QR code in half-block characters, for a terminal. */
export function qrTerminal(text: string): string {
  return renderUnicodeCompact(text, { border: 2 })
}
