/**
 * The body of a multipart/encrypted message (or of a cleartext Secure-Join request or delivery
 * report), checked as it streams past: the two PGP/MIME parts, the armor, and the OpenPGP packets
 * inside it. Memory stays at one line (at most 998 characters) whatever the message's size. Pure,
 * no I/O.
 *
 * Lines end at LF (a CR before it is dropped). A CR anywhere else is refused: some parsers
 * (Python's `email`) end a line there, and could find a boundary the filter did not see.
 */
import { regularLines } from './armor-lines.js'
import { PacketScanner } from './openpgp.js'
import { partFields, reportPartProblem } from './part-headers.js'
import { type Direction, malformed, refuse, type Verdict } from './verdict.js'

const MAX_LINE = 998 // RFC 5322 line length, without CRLF
const MAX_PART_HEADER = 16 * 1024
const MAX_SMALL_BODY = 1024 // the Version part, a Secure-Join text

export type Mode = 'encrypted' | 'securejoin' | 'report'

/** The encodings a part the filter reads may have: its text is read as it is. */
const IDENTITY = new Set(['7bit', '8bit', 'binary'])

type BodyState =
  | 'preamble'
  | 'part-headers'
  | 'small-body' // part 1 (Version: 1) or the Secure-Join text
  | 'armor-begin'
  | 'armor-headers'
  | 'armor-data'
  | 'armor-crc'
  | 'armor-after'
  | 'after-part' // securejoin: its one part ended, expecting the close delimiter only
  | 'skip-body' // report: a part's body, not read
  | 'done'

export class BodyCheck {
  private state: BodyState = 'preamble'
  private carry: Buffer | undefined
  private part = 0
  private headerLines: string[] = []
  private headerBytes = 0
  private small = ''
  private b64carry = ''
  private padded = false
  private lineLen = 0 // armor data line length, when regular
  private eolLen = 2
  readonly scanner = new PacketScanner()
  failure: Verdict | undefined
  private readonly delimiter: Buffer

  constructor(
    private readonly mode: Mode,
    boundary: string,
    private readonly direction: Direction,
  ) {
    this.delimiter = Buffer.from(`--${boundary}`, 'latin1')
  }

  /** Bytes held between chunks (an unfinished line, a small part's text): bounded, whatever the size. */
  get buffered(): number {
    return (this.carry?.length ?? 0) + this.small.length + this.headerBytes + this.b64carry.length
  }

  get done(): boolean {
    return this.state === 'done' || this.failure !== undefined
  }

  write(chunk: Buffer): void {
    if (this.done) return
    let buf = chunk
    let pos = 0
    if (this.carry) {
      const nl = chunk.indexOf(10)
      if (nl < 0) {
        this.carry = Buffer.concat([this.carry, chunk])
        if (this.carry.length > MAX_LINE + 2) this.fail(malformed('a line longer than 998 characters'))
        return
      }
      const line = Buffer.concat([this.carry, chunk.subarray(0, nl + 1)])
      this.carry = undefined
      this.line(line, 0, line.length - 1)
      pos = nl + 1
    }
    buf = chunk
    const len = buf.length
    while (pos < len && !this.done) {
      if (this.state === 'armor-data' && this.lineLen > 0) {
        pos = this.fastData(buf, pos)
        if (pos >= len || this.done) break
      }
      const nl = buf.indexOf(10, pos)
      if (nl < 0) {
        if (len - pos > MAX_LINE + 2) return void this.fail(malformed('a line longer than 998 characters'))
        this.carry = Buffer.from(buf.subarray(pos))
        return
      }
      if (nl - pos > MAX_LINE + 1) return void this.fail(malformed('a line longer than 998 characters'))
      this.line(buf, pos, nl)
      pos = nl + 1
    }
  }

  end(): Verdict | undefined {
    if (this.failure) return this.failure
    if (this.carry && !this.done) {
      const line = this.carry
      this.carry = undefined
      this.line(line, 0, line.length)
      if (this.failure) return this.failure
    }
    if (this.state !== 'done') {
      if (this.mode === 'securejoin') return refuse('an incomplete Secure-Join message')
      if (this.mode === 'report') return refuse('an incomplete delivery report')
      return this.part === 0
        ? malformed('no MIME part found (boundary missing)')
        : refuse('the encrypted message ends before its closing boundary')
    }
    return undefined
  }

  private fail(v: Verdict): void {
    this.failure ??= v
  }

  /**
   * Regular armor lines (all of length lineLen, a multiple of 4) without looking for the end of
   * each: the line break must sit right after lineLen characters. Runs of lines inside a packet
   * body the scanner does not need are skipped undecoded (their count of base64 characters is
   * what matters: it places the next packet header and the end).
   */
  private fastData(buf: Buffer, start: number): number {
    const L = this.lineLen
    const stride = L + this.eolLen
    const cr = this.eolLen === 2
    const bytes = (L / 4) * 3
    const len = buf.length
    let pos = start
    while (pos + stride <= len && this.b64carry === '') {
      const skippable = this.scanner.skippable
      if (skippable >= bytes) {
        // A run of whole lines inside a packet body, skipped by arithmetic: the first and the
        // last line of the run must sit where regular lines would.
        const k = Math.min(Math.floor(skippable / bytes), Math.floor((len - pos) / stride))
        if (!regularLines(buf, pos, k, L, cr)) break
        this.scanner.skip(k * bytes)
        pos += k * stride
        continue
      }
      if (!regularLines(buf, pos, 1, L, cr)) break
      this.scanner.feed(Buffer.from(buf.toString('latin1', pos, pos + L), 'base64'))
      if (this.scanner.error) {
        this.fail(refuse(this.scanner.error))
        return len
      }
      pos += stride
    }
    return pos
  }

  /** One line, [start, nl) of buf, nl at its LF (or the end); the CR before the LF is dropped. */
  private line(buf: Buffer, start: number, nl: number): void {
    const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl
    if (buf.subarray(start, end).indexOf(13) >= 0) return void this.fail(malformed('a CR that does not end a line'))
    const d = this.delimiter
    const isDelimiter =
      end - start >= d.length &&
      buf[start] === 45 &&
      buf[start + 1] === 45 &&
      buf.compare(d, 0, d.length, start, start + d.length) === 0
    if (isDelimiter) {
      const tail = buf.toString('latin1', start + d.length, end)
      if (/^--[ \t]*$/.test(tail)) return void this.delimiterLine(true)
      if (/^[ \t]*$/.test(tail)) return void this.delimiterLine(false)
    }
    switch (this.state) {
      case 'preamble':
      case 'after-part':
        if (this.state === 'after-part' && end > start) this.fail(refuse('text after the Secure-Join part'))
        return
      case 'part-headers':
        return void this.headerLine(buf.toString('latin1', start, end))
      case 'small-body':
        this.small += `${buf.toString('latin1', start, end)}\n`
        if (this.small.length > MAX_SMALL_BODY)
          this.fail(
            this.mode === 'securejoin' ? refuse('not a Secure-Join request') : refuse('the Version part is too long'),
          )
        return
      case 'armor-begin':
        if (buf.toString('latin1', start, end) !== '-----BEGIN PGP MESSAGE-----')
          return void this.fail(refuse('the second part does not start with -----BEGIN PGP MESSAGE-----'))
        this.state = 'armor-headers'
        return
      case 'armor-headers': {
        const text = buf.toString('latin1', start, end)
        if (text === '') {
          this.state = 'armor-data'
          return
        }
        if (/^[A-Za-z][A-Za-z0-9-]*: /.test(text)) {
          if (this.direction === 'outgoing')
            return void this.fail(refuse(`an armor header line in outgoing mail (${text.slice(0, 40)})`))
          return
        }
        this.state = 'armor-data'
        return void this.armorLine(buf, start, end)
      }
      case 'armor-data':
      case 'armor-crc':
        return void this.armorLine(buf, start, end)
      case 'armor-after':
        if (end > start) this.fail(refuse('text after -----END PGP MESSAGE-----'))
        return
      case 'skip-body':
      case 'done':
        return
    }
  }

  private armorLine(buf: Buffer, start: number, end: number): void {
    const text = buf.toString('latin1', start, end)
    if (text === '-----END PGP MESSAGE-----') {
      if (this.b64carry !== '') return void this.fail(refuse('the armored data is not valid base64'))
      const r = this.scanner.end()
      if (!r.ok) return void this.fail(refuse(r.reason))
      this.state = 'armor-after'
      return
    }
    if (this.state === 'armor-crc') return void this.fail(refuse('text between the armor checksum and its end line'))
    if (text === '') return
    if (/^=[A-Za-z0-9+/]{4}$/.test(text)) {
      this.state = 'armor-crc'
      return
    }
    if (this.padded || !/^[A-Za-z0-9+/]*={0,2}$/.test(text))
      return void this.fail(refuse('the armored data is not valid base64'))
    if (text.endsWith('=')) this.padded = true
    if (this.lineLen === 0 && text.length % 4 === 0 && text.length >= 16 && !this.padded) {
      this.lineLen = text.length
      this.eolLen = end < buf.length && buf[end] === 13 ? 2 : 1
    }
    const all = this.b64carry + text
    const usable = all.length - (all.length % 4)
    this.b64carry = all.slice(usable)
    if (usable > 0) this.scanner.feed(Buffer.from(all.slice(0, usable), 'base64'))
    if (this.scanner.error) this.fail(refuse(this.scanner.error))
  }

  private headerLine(text: string): void {
    this.headerBytes += text.length
    if (this.headerBytes > MAX_PART_HEADER) return void this.fail(malformed('MIME part headers too long'))
    if (text !== '') {
      if (/^[ \t]/.test(text) && this.headerLines.length > 0) this.headerLines[this.headerLines.length - 1] += text
      else this.headerLines.push(text)
      return
    }
    // End of the part's headers.
    const fields = partFields(this.headerLines)
    if ('accept' in fields) return void this.fail(fields)
    const { mime, cte } = fields
    this.headerLines = []
    this.headerBytes = 0
    if (this.mode === 'report') return void this.reportPart(mime, cte)
    if (mime.startsWith('multipart/')) return void this.fail(refuse('a nested multipart part'))
    if (cte !== undefined && !IDENTITY.has(cte))
      return void this.fail(refuse(`a part with Content-Transfer-Encoding ${cte}`))
    if (this.mode === 'securejoin') {
      if (mime !== 'text/plain') return void this.fail(refuse('not a Secure-Join request'))
      this.small = ''
      this.state = 'small-body'
      return
    }
    if (this.part === 1) {
      if (mime !== 'application/pgp-encrypted')
        return void this.fail(refuse(`the first part is ${mime}, not application/pgp-encrypted`))
      this.small = ''
      this.state = 'small-body'
      return
    }
    if (mime !== 'application/octet-stream')
      return void this.fail(refuse(`the second part is ${mime}, not application/octet-stream`))
    this.state = 'armor-begin'
  }

  /** A part of a delivery report: the human-readable one (any), the status, the returned message. */
  private reportPart(mime: string, cte: string | undefined): void {
    const problem = reportPartProblem(this.part, mime, cte)
    if (problem) return void this.fail(problem)
    this.state = 'skip-body'
  }

  private delimiterLine(close: boolean): void {
    const s = this.state
    if (s === 'preamble') {
      if (close) return void this.fail(malformed('a multipart that closes before its first part'))
      this.part = 1
      this.state = 'part-headers'
      return
    }
    if (s === 'part-headers') return void this.fail(malformed('a MIME part without a body'))
    if (this.mode === 'report') {
      if (s !== 'skip-body') return void this.fail(malformed('an unexpected MIME boundary'))
      if (close) {
        if (this.part < 2) return void this.fail(refuse('a delivery report without its message/delivery-status part'))
        this.state = 'done'
        return
      }
      if (this.part === 3) return void this.fail(refuse('more than three parts in a delivery report'))
      this.part++
      this.state = 'part-headers'
      return
    }
    if (this.mode === 'securejoin') {
      if (s === 'small-body') {
        const t = this.small.trim().toLowerCase()
        if (t !== 'secure-join: vc-request' && t !== 'secure-join: vg-request')
          return void this.fail(refuse('not a Secure-Join request'))
        if (!close) {
          this.state = 'after-part'
          return void this.fail(refuse('a Secure-Join request with more than one part'))
        }
        this.state = 'done'
        return
      }
      if (s === 'after-part' && close) {
        this.state = 'done'
        return
      }
      return void this.fail(refuse('a Secure-Join request with more than one part'))
    }
    if (s === 'small-body' && this.part === 1) {
      if (this.small.trim() !== 'Version: 1') return void this.fail(refuse('the first part does not say "Version: 1"'))
      if (close) return void this.fail(refuse('an encrypted message without its encrypted part'))
      this.part = 2
      this.state = 'part-headers'
      return
    }
    if (s === 'armor-after') {
      if (!close) return void this.fail(refuse('more than two parts in multipart/encrypted'))
      this.state = 'done'
      return
    }
    if (s === 'armor-begin' || s === 'armor-headers' || s === 'armor-data' || s === 'armor-crc')
      return void this.fail(refuse('the encrypted part ends before -----END PGP MESSAGE-----'))
    return void this.fail(malformed('an unexpected MIME boundary'))
  }
}
