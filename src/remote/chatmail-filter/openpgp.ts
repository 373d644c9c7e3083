/**
 * The OpenPGP packet sequence of an encrypted message, checked as its bytes stream past (RFC 4880 /
 * RFC 9580 packet framing): zero or more session-key packets (PKESK, tag 1; SKESK, tag 3), then
 * exactly one encrypted-data packet (SEIPD, tag 18) that ends where the data ends. Both header
 * formats are read (the current one, and the legacy one some implementations still write for
 * session-key packets); a partial-length body is followed chunk by chunk. Packet bodies are not
 * looked at: the scanner only needs their lengths, so a caller may `skip()` body bytes without
 * decoding them (see `skippable`). Pure, no I/O.
 */

const PKESK = 1
const SKESK = 3
const SEIPD = 18

type State =
  | { at: 'tag' }
  | { at: 'len'; tag: number; legacy: number; need: number; have: number[]; partial: boolean }
  | { at: 'body'; tag: number; left: number; partial: boolean }
  | { at: 'rest'; tag: number }

export class PacketScanner {
  private state: State = { at: 'tag' }
  private lastTag = -1
  private packets = 0
  /** Set when the sequence broke a rule; the reason, for the refusal. */
  error: string | undefined

  /** Body bytes that may be skipped without being read (0 while a header is being read). */
  get skippable(): number {
    const s = this.state
    if (this.error) return Number.MAX_SAFE_INTEGER
    if (s.at === 'body') return s.left
    if (s.at === 'rest') return Number.MAX_SAFE_INTEGER
    return 0
  }

  skip(n: number): void {
    if (this.error || n === 0) return
    const s = this.state
    if (s.at === 'rest') return
    if (s.at !== 'body' || n > s.left) throw new Error('PacketScanner.skip beyond the body')
    s.left -= n
    if (s.left === 0) this.bodyDone(s)
  }

  feed(bytes: Uint8Array, from = 0, to = bytes.length): void {
    let i = from
    while (i < to && !this.error) {
      const s = this.state
      if (s.at === 'rest') return
      if (s.at === 'body') {
        const n = Math.min(s.left, to - i)
        i += n
        s.left -= n
        if (s.left === 0) this.bodyDone(s)
        continue
      }
      const b = bytes[i++] as number
      if (s.at === 'tag') this.tag(b)
      else this.lengthByte(s, b)
    }
  }

  /** The data ended: is what came a complete, allowed sequence? */
  end(): { ok: true } | { ok: false; reason: string } {
    if (this.error) return { ok: false, reason: this.error }
    const s = this.state
    if (this.packets === 0 && s.at === 'tag') return { ok: false, reason: 'the OpenPGP data is empty' }
    if (s.at === 'len' || (s.at === 'body' && (s.left > 0 || s.partial)))
      return { ok: false, reason: 'the OpenPGP data ends inside a packet' }
    const last = s.at === 'rest' ? s.tag : this.lastTag
    if (last !== SEIPD)
      return { ok: false, reason: `the last OpenPGP packet is not encrypted data (tag ${last}, expected 18)` }
    return { ok: true }
  }

  private tag(b: number): void {
    // A packet follows a finished one: only session-key packets may come before it.
    if (this.packets > 0 && this.lastTag !== PKESK && this.lastTag !== SKESK) {
      this.error = `OpenPGP packet with tag ${this.lastTag} before the end (only session keys, then encrypted data)`
      return
    }
    if ((b & 0x80) === 0) {
      this.error = 'not an OpenPGP packet header'
      return
    }
    if ((b & 0x40) !== 0) {
      this.state = { at: 'len', tag: b & 0x3f, legacy: -1, need: 1, have: [], partial: false }
      return
    }
    const tag = (b >> 2) & 0x0f
    const type = b & 3
    if (type === 3) {
      // Legacy "indeterminate length": the packet runs to the end of the data.
      this.packets++
      this.lastTag = tag
      this.state = { at: 'rest', tag }
      return
    }
    this.state = { at: 'len', tag, legacy: type, need: [1, 2, 4][type] as number, have: [], partial: false }
  }

  private lengthByte(s: Extract<State, { at: 'len' }>, b: number): void {
    s.have.push(b)
    if (s.legacy >= 0) {
      if (s.have.length < s.need) return
      const len = s.have.reduce((a, x) => a * 256 + x, 0)
      return void this.startBody(s.tag, len, false)
    }
    const o1 = s.have[0] as number
    if (s.have.length === 1) {
      if (o1 < 192) return void this.startBody(s.tag, o1, false)
      if (o1 >= 224 && o1 < 255) return void this.startBody(s.tag, 2 ** (o1 & 0x1f), true)
      s.need = o1 === 255 ? 5 : 2
      return
    }
    if (s.have.length < s.need) return
    if (o1 === 255) {
      const [, a, b2, c, d] = s.have as [number, number, number, number, number]
      return void this.startBody(s.tag, ((a * 256 + b2) * 256 + c) * 256 + d, false)
    }
    return void this.startBody(s.tag, ((o1 - 192) << 8) + (s.have[1] as number) + 192, false)
  }

  private startBody(tag: number, len: number, partial: boolean): void {
    this.state = { at: 'body', tag, left: len, partial }
    if (len === 0) this.bodyDone(this.state)
  }

  private bodyDone(s: Extract<State, { at: 'body' }>): void {
    if (s.partial) {
      // Another length header (no tag) continues the same packet.
      this.state = { at: 'len', tag: s.tag, legacy: -1, need: 1, have: [], partial: true }
      return
    }
    this.packets++
    this.lastTag = s.tag
    this.state = { at: 'tag' }
  }
}
