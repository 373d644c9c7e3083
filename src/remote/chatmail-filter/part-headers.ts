/**
 * The header of one MIME part inside a message the filter reads (body.ts), and what a delivery
 * report's parts may be. Pure.
 */
import { type ContentType, parseContentType, parseEncoding } from './headers.js'
import { malformed, refuse, type Verdict } from './verdict.js'

/** The parts of a delivery report after its first (RFC 3464 2, RFC 6522 3, RFC 6533 6). */
const REPORT_STATUS = new Set(['message/delivery-status', 'message/global-delivery-status'])
const REPORT_RETURNED = new Set(['message/rfc822', 'text/rfc822-headers', 'message/global', 'message/global-headers'])

/**
 * A part's type (text/plain when it has none) and transfer encoding (`invalid` when unreadable),
 * from its unfolded header lines; or the verdict on a header no parser should read otherwise.
 */
export function partFields(lines: string[]): { mime: string; cte: string | undefined } | Verdict {
  let ct: ContentType | undefined
  let cte: string | undefined
  for (const h of lines) {
    const colon = h.indexOf(':')
    if (colon < 0) return malformed('a MIME part header line without a colon')
    // A field name as RFC 5322 has it (no space before the colon): parsers that read another
    // line as the end of the part's header would see a different part.
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(h.slice(0, colon)))
      return malformed(`a MIME part header line that is not a field (${h.slice(0, 40)})`)
    const name = h.slice(0, colon).toLowerCase()
    const value = h.slice(colon + 1)
    if (name === 'content-type') {
      if (ct) return malformed('a MIME part with two Content-Type headers')
      ct = parseContentType(value) ?? { mime: 'invalid', params: new Map() }
    } else if (name === 'content-transfer-encoding') {
      if (cte !== undefined) return malformed('a MIME part with two Content-Transfer-Encoding headers')
      cte = parseEncoding(value) ?? 'invalid'
    }
  }
  return { mime: ct?.mime ?? 'text/plain', cte }
}

/** Why part number `part` (from 1) of a delivery report may not be what it is, or undefined. */
export function reportPartProblem(part: number, mime: string, cte: string | undefined): Verdict | undefined {
  if (cte === 'invalid') return malformed('an invalid Content-Transfer-Encoding')
  if (part === 2 && !REPORT_STATUS.has(mime))
    return refuse(`the second part of a delivery report is ${mime}, not message/delivery-status`)
  if (part === 3 && !REPORT_RETURNED.has(mime)) return refuse(`the third part of a delivery report is ${mime}`)
  if (part > 1 && mime.startsWith('multipart/')) return refuse('a nested multipart part')
  return undefined
}
