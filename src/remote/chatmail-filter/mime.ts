/**
 * Is this message end-to-end encrypted, or one of the few kinds a chatmail relay lets through in
 * the clear? Decided as the message streams past (header fields, then body chunks of any size),
 * in memory bounded by a few kilobytes whatever the message's size. Pure, no I/O.
 *
 * Encrypted means PGP/MIME (RFC 3156) and nothing else: the top-level type is
 * multipart/encrypted with exactly two parts, an application/pgp-encrypted part saying
 * "Version: 1" and an application/octet-stream part holding one ASCII-armored PGP MESSAGE whose
 * packets are session keys followed by one encrypted-data packet (openpgp.ts). The exceptions are
 * listed with `Kind` below and in docs/guides/encryption-only-mail.md.
 */
import { BodyCheck } from './body.js'
import { headerAddress, parseContentType, parseEncoding, unfold } from './headers.js'
import { type Envelope, forged, type Kind, malformed, refuse, type Verdict } from './verdict.js'

export type { Direction, Envelope, Kind, Verdict } from './verdict.js'

const SINGLE = new Set([
  'from',
  'content-type',
  'content-transfer-encoding',
  'subject',
  'secure-join',
  'auto-submitted',
])
/** Header fields that must not appear twice (parsers differ on which one counts). */
const ONCE = new Set(['from', 'content-type', 'content-transfer-encoding'])
/** The encodings a multipart entity may have (RFC 2045 6.4): its body is read as it is. */
const IDENTITY = new Set(['7bit', '8bit', 'binary'])

export class MessageCheck {
  private readonly headers = new Map<string, string>()
  private readonly duplicate = new Set<string>()
  private body: BodyCheck | undefined
  private early: Verdict | undefined
  private kindAtEnd: Kind | undefined

  constructor(private readonly env: Envelope) {}

  /** One top-level header field (value as postfix hands it over: unfolded or folded; kept so). */
  header(name: string, value: string): void {
    const n = name.trim().toLowerCase()
    if (!SINGLE.has(n)) return
    if (this.headers.has(n)) this.duplicate.add(n)
    else this.headers.set(n, value.trim())
  }

  /** An unstructured header's value, unfolded (or '' when absent). */
  private text(name: string): string {
    return unfold(this.headers.get(name) ?? '')
  }

  /** Bytes held between chunks (see BodyCheck.buffered). */
  get buffered(): number {
    return this.body?.buffered ?? 0
  }

  /** After the header: a verdict if one is possible already (the body is then not needed). */
  endOfHeaders(): Verdict | undefined {
    this.early = this.decideHeaders()
    return this.early
  }

  /** A body chunk; a verdict once the body has failed (no more chunks are needed then). */
  write(chunk: Buffer): Verdict | undefined {
    if (this.early) return this.early
    if (!this.body) return undefined
    this.body.write(chunk)
    return this.body.failure
  }

  end(): Verdict {
    if (this.early) return this.early
    if (!this.body) return refuse('no body')
    const v = this.body.end()
    if (v) return v
    return { accept: true, kind: this.kindAtEnd as Kind }
  }

  private decideHeaders(): Verdict | undefined {
    const env = this.env
    for (const n of this.duplicate) if (ONCE.has(n)) return malformed(`two ${n} headers`)
    const fromHeader = this.headers.get('from')
    const from = fromHeader === undefined ? undefined : headerAddress(fromHeader)
    if (!from) return malformed(`no valid From header${fromHeader ? ` (${fromHeader.slice(0, 80)})` : ''}`)
    if (env.direction === 'outgoing' && from !== env.mailFrom.toLowerCase())
      return forged(`From header <${from}> is not the sender <${env.mailFrom}>`)
    if (env.direction === 'incoming') {
      const literal = /@\[(?:ipv6:)?([^\]]+)\]$/i.exec(from)?.[1]
      if (literal !== undefined && literal.toLowerCase() !== (env.clientAddr ?? '').toLowerCase())
        return forged(`From domain [${literal}] is not the sending server's address ${env.clientAddr ?? '(unknown)'}`)
    }
    const ctValue = this.headers.get('content-type')
    const ct =
      ctValue === undefined ? { mime: 'text/plain', params: new Map<string, string>() } : parseContentType(ctValue)
    if (!ct) return malformed(`an invalid Content-Type (${unfold(ctValue ?? '').slice(0, 80)})`)
    const boundary = ct.params.get('boundary')
    const cteValue = this.headers.get('content-transfer-encoding')
    const cte = cteValue === undefined ? '7bit' : parseEncoding(cteValue)
    if (ct.mime.startsWith('multipart/') && (cte === undefined || !IDENTITY.has(cte)))
      return malformed(`a multipart with Content-Transfer-Encoding ${unfold(cteValue ?? '').slice(0, 40)}`)
    if (ct.mime === 'multipart/encrypted') {
      if (!boundary) return malformed('multipart without a boundary')
      this.body = new BodyCheck('encrypted', boundary, env.direction)
      this.kindAtEnd = 'encrypted'
      return undefined
    }
    // Cleartext: only the exceptions.
    const sj = this.text('secure-join')
    if ((sj === 'vc-request' || sj === 'vg-request') && ct.mime.startsWith('multipart/') && boundary) {
      this.body = new BodyCheck('securejoin', boundary, env.direction)
      this.kindAtEnd = 'securejoin'
      return undefined
    }
    if (env.direction === 'incoming') {
      if (this.isDeliveryReport(from, ct.mime, ct.params.get('report-type')) && boundary) {
        this.body = new BodyCheck('report', boundary, env.direction)
        this.kindAtEnd = 'bounce'
        return undefined
      }
    } else if (
      env.rcpts.length === 1 &&
      (env.rcpts[0] as string).toLowerCase() === from &&
      this.text('subject') === 'Autocrypt Setup Message' &&
      ct.mime === 'multipart/mixed'
    )
      return { accept: true, kind: 'setup-message' }
    return refuse(`${ct.mime} is not multipart/encrypted`)
  }

  /**
   * Does the header say this is a delivery status notification (RFC 3464, RFC 3461 6: sent with
   * the null reverse-path, MAIL FROM:<>) from a mailer-daemon? What chatmail's filtermail lets
   * through (Auto-Submitted, From mailer-daemon@, multipart/report), narrowed to what a bounce
   * is: the empty envelope sender, Auto-Submitted other than "no" (RFC 3834 5), report-type
   * delivery-status. The body is then held to a report's parts (BodyCheck 'report').
   */
  private isDeliveryReport(from: string, mime: string, reportType: string | undefined): boolean {
    const auto = parseEncoding(this.headers.get('auto-submitted') ?? '')
    return (
      this.env.mailFrom === '' &&
      auto !== undefined &&
      auto !== 'no' &&
      from.startsWith('mailer-daemon@') &&
      mime === 'multipart/report' &&
      reportType?.toLowerCase() === 'delivery-status'
    )
  }
}

/**
 * A whole message from its raw bytes (the top-level header is split here), in chunks of any
 * size: what tests and the benchmark use. The milter gets the header fields from postfix instead.
 */
export class RawMessageCheck {
  private readonly check: MessageCheck
  private head: Buffer[] | undefined = []
  private headLen = 0
  private verdict: Verdict | undefined

  constructor(env: Envelope) {
    this.check = new MessageCheck(env)
  }

  get buffered(): number {
    return this.headLen * (this.head ? 1 : 0) + this.check.buffered
  }

  write(chunk: Buffer): Verdict | undefined {
    if (this.verdict) return this.verdict
    if (!this.head) {
      this.verdict = this.check.write(chunk)
      return this.verdict
    }
    this.head.push(chunk)
    this.headLen += chunk.length
    const all = this.head.length === 1 ? chunk : Buffer.concat(this.head)
    const m = /\r?\n\r?\n/.exec(all.toString('latin1', 0, Math.min(all.length, 256 * 1024)))
    if (!m) {
      if (this.headLen > 256 * 1024) this.verdict = malformed('the header is longer than 256 KiB')
      return this.verdict
    }
    this.head = undefined
    const text = all.toString('latin1', 0, m.index)
    for (const field of text.split(/\r?\n(?![ \t])/)) {
      const colon = field.indexOf(':')
      if (colon > 0) this.check.header(field.slice(0, colon), field.slice(colon + 1))
    }
    this.verdict = this.check.endOfHeaders()
    if (this.verdict) return this.verdict
    this.verdict = this.check.write(all.subarray(m.index + m[0].length))
    return this.verdict
  }

  end(): Verdict {
    if (this.verdict) return this.verdict
    if (this.head) {
      // No blank line: the whole message is a header.
      this.head.push(Buffer.from('\r\n\r\n'))
      const v = this.write(Buffer.alloc(0))
      if (v) return v
    }
    return this.check.end()
  }
}

/** The verdict on a complete raw message (tests). */
export function checkMessage(raw: Buffer, env: Envelope, chunkSize = 65536): Verdict {
  const c = new RawMessageCheck(env)
  for (let i = 0; i < raw.length; i += chunkSize) {
    const v = c.write(raw.subarray(i, i + chunkSize))
    if (v) return v
  }
  return c.end()
}
