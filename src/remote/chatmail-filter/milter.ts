/**
 * The milter protocol (version 6, as postfix speaks it: smtpd_milters) between postfix and
 * chatmail-filter: the frame codec and one connection's conversation. Postfix sends each SMTP
 * stage (connect, MAIL, RCPT, header fields, body chunks of at most 64 KiB, end of message); the
 * filter answers continue, or a reply code that postfix gives the SMTP client. Pure, no I/O: the
 * server (main.ts) pipes socket bytes in and writes the answers out.
 */
import { type Envelope, MessageCheck, type Verdict } from './mime.js'

/** Commands from postfix. */
export const CMD = {
  abort: 'A',
  body: 'B',
  connect: 'C',
  macro: 'D',
  endOfBody: 'E',
  helo: 'H',
  quitNewConnection: 'K',
  header: 'L',
  mail: 'M',
  endOfHeaders: 'N',
  optneg: 'O',
  quit: 'Q',
  rcpt: 'R',
  data: 'T',
  unknown: 'U',
} as const

/** Protocol flags (SMFIP_*): steps postfix may leave out, or need no answer to. */
export const P = {
  noHelo: 0x2,
  noUnknown: 0x100,
  noData: 0x200,
  noReplyHeader: 0x80,
  noReplyBody: 0x80000,
} as const

/** The largest frame accepted (postfix's body chunks are at most 65535 bytes). */
export const MAX_FRAME = 1024 * 1024

export interface Frame {
  cmd: string
  data: Buffer
}

/**
 * Splits a byte stream into frames: 4-byte big-endian length (command byte + data), command, data.
 * Chunks are kept as they come and joined only for a frame that spans them: a 64 KiB body frame
 * costs one copy at most.
 */
export class FrameReader {
  private chunks: Buffer[] = []
  private length = 0

  /** The frames completed by chunk; throws on a frame over MAX_FRAME. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.length += chunk.length
    }
    const out: Frame[] = []
    while (this.length >= 4) {
      const head = this.peek(4)
      const len = head.readUInt32BE(0)
      if (len < 1 || len > MAX_FRAME) throw new Error(`milter frame of ${len} bytes`)
      if (this.length < 4 + len) break
      const whole = this.take(4 + len)
      out.push({ cmd: String.fromCharCode(whole[4] as number), data: whole.subarray(5) })
    }
    return out
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer
    if (first.length >= n) return first
    return Buffer.concat(this.chunks).subarray(0, n)
  }

  private take(n: number): Buffer {
    this.length -= n
    const first = this.chunks[0] as Buffer
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const parts: Buffer[] = []
    let need = n
    while (need > 0) {
      const c = this.chunks[0] as Buffer
      if (c.length <= need) {
        parts.push(c)
        this.chunks.shift()
        need -= c.length
      } else {
        parts.push(c.subarray(0, need))
        this.chunks[0] = c.subarray(need)
        need = 0
      }
    }
    return Buffer.concat(parts, n)
  }
}

export function frame(cmd: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5)
  head.writeUInt32BE(data.length + 1, 0)
  head[4] = cmd.charCodeAt(0)
  return Buffer.concat([head, data])
}

/** NUL-terminated strings of a frame's data. */
export function cstrings(data: Buffer): string[] {
  const parts = data.toString('latin1').split('\0')
  if (parts[parts.length - 1] === '') parts.pop()
  return parts
}

const CONTINUE = frame('c')
const ACCEPT = frame('a')

/** An SMTP reply for postfix to send: `550 5.7.1 text` (one line; % and control characters removed). */
export function replyFrame(code: string, status: string, text: string): Buffer {
  const clean = text.replace(/[\0-\x1f\x7f%]/g, ' ').slice(0, 400)
  return frame('y', Buffer.from(`${code} ${status} ${clean}\0`, 'latin1'))
}

function verdictFrame(v: Verdict): Buffer {
  return v.accept ? CONTINUE : replyFrame(v.code, v.status, v.reason)
}

/** `<a@b>` → `a@b` */
export function stripAngle(arg: string): string {
  const s = arg.trim()
  return s.startsWith('<') && s.endsWith('>') ? s.slice(1, -1) : s
}

export interface SessionHooks {
  /** At MAIL FROM of a logged-in user: undefined to go on, or a refusal (rate limit). */
  onSender?(login: string, mailFrom: string): Verdict | undefined
  /** Every decided message, for the log. */
  onVerdict?(env: Envelope, v: Verdict, login: string | undefined): void
  maxMessageSize: number
}

/** One milter connection from postfix (it may carry several messages). */
export class MilterSession {
  private macros = new Map<string, string>()
  private clientAddr = ''
  private mailFrom = ''
  private rcpts: string[] = []
  private check: MessageCheck | undefined
  private decided: Verdict | undefined
  private size = 0
  private noReply = 0
  closed = false

  constructor(private readonly hooks: SessionHooks) {}

  /** The answers to one frame (none for macros, aborts and steps negotiated to need none). */
  handle(f: Frame): Buffer[] {
    switch (f.cmd) {
      case CMD.optneg:
        return [this.optneg(f.data)]
      case CMD.macro: {
        const [head, ...rest] = cstrings(f.data.subarray(1))
        const pairs = head === undefined ? rest : [head, ...rest]
        for (let i = 0; i + 1 < pairs.length; i += 2) this.macros.set(pairs[i] as string, pairs[i + 1] as string)
        return []
      }
      case CMD.connect: {
        // hostname NUL, family, port (2 bytes, for IPv4/6), address NUL
        const nul = f.data.indexOf(0)
        const family = String.fromCharCode(f.data[nul + 1] ?? 0)
        const addr = family === '4' || family === '6' ? (cstrings(f.data.subarray(nul + 4))[0] ?? '') : ''
        this.clientAddr = addr.replace(/^ipv6:/i, '')
        return [CONTINUE]
      }
      case CMD.helo:
      case CMD.data:
      case CMD.unknown:
        return [CONTINUE]
      case CMD.mail:
        return [this.mail(cstrings(f.data)[0] ?? '')]
      case CMD.rcpt:
        this.rcpts.push(stripAngle(cstrings(f.data)[0] ?? ''))
        return [CONTINUE]
      case CMD.header:
        return this.header(f.data)
      case CMD.endOfHeaders:
        return [this.endOfHeaders()]
      case CMD.body:
        return this.body(f.data)
      case CMD.endOfBody: {
        if (f.data.length > 0) this.body(f.data)
        const v = this.finish()
        this.resetMessage()
        return [v]
      }
      case CMD.abort:
        this.resetMessage()
        return []
      case CMD.quitNewConnection:
        this.resetMessage()
        this.macros.clear()
        this.clientAddr = ''
        return []
      case CMD.quit:
        this.closed = true
        return []
      default:
        return [CONTINUE]
    }
  }

  private optneg(data: Buffer): Buffer {
    const offered = data.length >= 12 ? data.readUInt32BE(8) : 0
    // No header/body answers when postfix can do without them (fewer round trips per message).
    this.noReply = offered & (P.noReplyHeader | P.noReplyBody)
    const out = Buffer.alloc(12)
    out.writeUInt32BE(6, 0)
    out.writeUInt32BE(0, 4) // no modifications of the message
    out.writeUInt32BE((offered & (P.noHelo | P.noUnknown | P.noData)) | this.noReply, 8)
    return frame('O', out)
  }

  private get login(): string | undefined {
    const v = this.macros.get('{auth_authen}')
    return v === undefined || v === '' ? undefined : v
  }

  private envelope(): Envelope {
    return {
      direction: this.login ? 'outgoing' : 'incoming',
      mailFrom: this.mailFrom,
      rcpts: this.rcpts,
      clientAddr: this.clientAddr,
    }
  }

  private mail(arg: string): Buffer {
    this.resetMessage()
    this.mailFrom = stripAngle(arg)
    const login = this.login
    if (login && this.hooks.onSender) {
      const v = this.hooks.onSender(login, this.mailFrom)
      if (v) return verdictFrame(v)
    }
    return CONTINUE
  }

  private header(data: Buffer): Buffer[] {
    const [name, value] = cstrings(data)
    if (!this.decided) {
      this.check ??= new MessageCheck(this.envelope())
      this.check.header(name ?? '', value ?? '')
    }
    return this.noReply & P.noReplyHeader ? [] : [CONTINUE]
  }

  private endOfHeaders(): Buffer {
    this.check ??= new MessageCheck(this.envelope())
    const v = this.check.endOfHeaders()
    if (v && !v.accept) return this.decide(v)
    return CONTINUE
  }

  private body(data: Buffer): Buffer[] {
    if (!this.decided && this.check) {
      this.size += data.length
      if (this.size > this.hooks.maxMessageSize)
        this.decided = {
          accept: false,
          code: '552',
          status: '5.3.4',
          reason: `Message too big (more than ${this.hooks.maxMessageSize} bytes)`,
        }
      else {
        const v = this.check.write(data)
        if (v && !v.accept) this.decided = v
      }
    }
    return this.noReply & P.noReplyBody ? [] : [CONTINUE]
  }

  private finish(): Buffer {
    const v = this.decided ?? this.check?.end() ?? this.emptyMessage()
    this.hooks.onVerdict?.(this.envelope(), v, this.login)
    return v.accept ? ACCEPT : verdictFrame(v)
  }

  private emptyMessage(): Verdict {
    const c = new MessageCheck(this.envelope())
    return c.endOfHeaders() ?? c.end()
  }

  private decide(v: Verdict): Buffer {
    this.decided = v
    this.hooks.onVerdict?.(this.envelope(), v, this.login)
    return verdictFrame(v)
  }

  private resetMessage(): void {
    this.mailFrom = ''
    this.rcpts = []
    this.check = undefined
    this.decided = undefined
    this.size = 0
  }
}
