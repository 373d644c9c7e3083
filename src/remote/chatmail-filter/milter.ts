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
  /** A piece of a body frame that more of the same frame follows (body bytes are not gathered). */
  partial?: boolean
}

/**
 * Splits a byte stream into frames: 4-byte big-endian length (command byte + data), command, data.
 * Body frames (postfix's 64 KiB chunks) are not gathered: their bytes are handed on as they come,
 * as pieces of the chunks read (`partial` on all but the last), so no body byte is copied here.
 * Other frames are small and handed on whole (joined when they span chunks).
 */
export class FrameReader {
  private readonly head = Buffer.alloc(5)
  private headLen = 0
  private cmd = ''
  private left = -1 // data bytes still to come in the current frame; -1 between frames
  private parts: Buffer[] = []

  /** The frames (and body pieces) completed by chunk; throws on a frame over MAX_FRAME. */
  push(chunk: Buffer): Frame[] {
    const out: Frame[] = []
    let pos = 0
    const len = chunk.length
    while (pos < len || this.left === 0) {
      if (this.left < 0) {
        // The 5-byte head: length, command.
        if (this.headLen === 0 && len - pos >= 5) {
          chunk.copy(this.head, 0, pos, pos + 5)
          pos += 5
        } else {
          const n = Math.min(5 - this.headLen, len - pos)
          chunk.copy(this.head, this.headLen, pos, pos + n)
          this.headLen += n
          pos += n
          if (this.headLen >= 4) frameSize(this.head)
          if (this.headLen < 5) break
        }
        this.headLen = 0
        const size = frameSize(this.head)
        this.cmd = String.fromCharCode(this.head[4] as number)
        this.left = size - 1
        continue
      }
      if (this.left === 0) {
        const data =
          this.parts.length === 0
            ? EMPTY
            : this.parts.length === 1
              ? (this.parts[0] as Buffer)
              : Buffer.concat(this.parts)
        this.parts = []
        this.left = -1
        out.push({ cmd: this.cmd, data })
        continue
      }
      const n = Math.min(this.left, len - pos)
      const piece = chunk.subarray(pos, pos + n)
      pos += n
      this.left -= n
      if (this.cmd === CMD.body) {
        if (this.left > 0) out.push({ cmd: this.cmd, data: piece, partial: true })
        else {
          out.push({ cmd: this.cmd, data: piece })
          this.left = -1
        }
      } else this.parts.push(piece)
    }
    return out
  }
}

const EMPTY = Buffer.alloc(0)

function frameSize(head: Buffer): number {
  const size = head.readUInt32BE(0)
  if (size < 1 || size > MAX_FRAME) throw new Error(`milter frame of ${size} bytes`)
  return size
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
      case CMD.body: {
        const answer = this.body(f.data)
        return f.partial ? [] : answer
      }
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
