/**
 * The unix-socket server: splits each connection's bytes into lines, answers each command in
 * order, and closes a connection only on what dovecot never sends (an unknown command, a line
 * longer than dovecot's limit). Nothing a client sends can throw out of here.
 *
 * Dovecot opens a new connection per lookup (hello, one lookup, close), so the per-connection path
 * is the hot one: no object or closure per connection (the listeners are shared and find their
 * socket in `this`), the reply is written synchronously from the 'data' handler, and the bytes of
 * the last lookup reply are reused while the value is the same (TURN values change once a second).
 */
import { createServer, type Server, type Socket } from 'node:net'
import {
  type DictCommand,
  lookupFailReply,
  lookupReply,
  MAX_LINE_LENGTH,
  parseCommand,
  replyFor,
  tabUnescape,
} from './dict-protocol.js'
import type { Logger } from './log.js'

export interface Handler {
  /** The value for a dict key, or undefined (not found). May throw: the client then gets `F`. */
  lookup(key: string, user: string): string | undefined
  log: Logger
  verbose(): boolean
}

const NEWLINE = 0x0a
const LOOKUP = 0x4c // 'L'
const HELLO = 0x48 // 'H'
const TOO_LONG = `line longer than ${MAX_LINE_LENGTH} bytes`
const INTERNAL_ERROR = lookupFailReply('chatmail-metadata: internal error')

/** Bytes of a line whose newline has not arrived yet (rare: dovecot sends whole lines). */
interface Partial {
  parts: Buffer[]
  bytes: number
}

/** What a line asks of the connection besides a reply. */
interface Close {
  close: string
}

/** Debug lines for what is not a lookup (lookups are logged by the handler). Never values. */
function logCommand(cmd: DictCommand, log: Logger): void {
  if (cmd.kind === 'hello')
    log('debug', `hello: protocol ${cmd.major}.${cmd.minor}, dict ${JSON.stringify(cmd.dictName)}`)
  else if (cmd.kind === 'iterate') log('debug', `iterate ${cmd.path}: no entries`)
  else if (cmd.kind === 'change') log('debug', `transaction ${cmd.id}: ${cmd.op} ${cmd.key} ignored`)
  else if (cmd.kind === 'commit') log('debug', `transaction ${cmd.id}: committed (nothing stored)`)
}

/** `L<key>\t<user>…` as parseCommand reads it (its first two arguments), without the split. */
function lookupArgs(line: string): [key: string, user: string] {
  const tab = line.indexOf('\t', 1)
  if (tab < 0) return [tabUnescape(line.slice(1)), '']
  const next = line.indexOf('\t', tab + 1)
  return [tabUnescape(line.slice(1, tab)), tabUnescape(next < 0 ? line.slice(tab + 1) : line.slice(tab + 1, next))]
}

/** The server's line handling; one per server, shared by all its connections. */
class Lines {
  /** The last lookup value and its reply line, as bytes. */
  private lastValue: string | undefined
  private lastReply: Buffer | undefined

  constructor(private readonly handler: Handler) {}

  /** The reply to one line (a string or bytes), nothing, or why to close the connection. */
  answer(line: string, first: number): string | Buffer | Close | undefined {
    if (first === LOOKUP) return this.lookup(line)
    if (first === HELLO && !this.handler.verbose()) return undefined // no reply, nothing to log
    const cmd: DictCommand = parseCommand(line)
    if (cmd.kind === 'unknown') return { close: `unknown command ${JSON.stringify(cmd.command)}` }
    if (this.handler.verbose()) logCommand(cmd, this.handler.log)
    try {
      return replyFor(cmd, this.handler.lookup)
    } catch (err) {
      return this.failed(err)
    }
  }

  private lookup(line: string): string | Buffer {
    const [key, user] = lookupArgs(line)
    let value: string | undefined
    try {
      value = this.handler.lookup(key, user)
    } catch (err) {
      return this.failed(err)
    }
    if (value === undefined) return lookupReply(undefined)
    if (value !== this.lastValue || this.lastReply === undefined) {
      this.lastReply = Buffer.from(lookupReply(value))
      this.lastValue = value
    }
    return this.lastReply
  }

  private failed(err: unknown): string {
    this.handler.log('error', `lookup failed: ${(err as Error).message}`)
    return INTERNAL_ERROR
  }
}

/** The caller listens, and handles the server's own errors. */
export function createDictServer(handler: Handler): Server {
  const lines = new Lines(handler)
  const partials = new WeakMap<Socket, Partial>()

  function close(socket: Socket, out: string, reason: string): void {
    handler.log('warn', `closing a dict connection: ${reason}`)
    partials.delete(socket)
    socket.removeAllListeners('data')
    socket.end(out)
  }

  /** Keeps the unfinished tail of a chunk; closes the connection when that line is already too long. */
  function keep(socket: Socket, part: Buffer): void {
    let p = partials.get(socket)
    if (p === undefined) {
      p = { parts: [], bytes: 0 }
      partials.set(socket, p)
    }
    p.parts.push(Buffer.from(part))
    p.bytes += part.length
    if (p.bytes > MAX_LINE_LENGTH) close(socket, '', TOO_LONG)
  }

  function onData(this: Socket, chunk: Buffer): void {
    let p = partials.get(this)
    let start = 0
    let out: string | Buffer | undefined
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      let line: string | undefined
      let first: number
      if (p === undefined) {
        first = nl > start ? (chunk[start] as number) : NEWLINE
        line = nl - start > MAX_LINE_LENGTH ? undefined : chunk.toString('utf8', start, nl)
      } else {
        const bytes = p.bytes + nl - start
        const whole = Buffer.concat([...p.parts, chunk.subarray(start, nl)], bytes)
        partials.delete(this)
        p = undefined
        first = bytes > 0 ? (whole[0] as number) : NEWLINE
        line = bytes > MAX_LINE_LENGTH ? undefined : whole.toString('utf8')
      }
      start = nl + 1
      const reply = line === undefined ? { close: TOO_LONG } : lines.answer(line, first)
      if (reply === undefined) continue
      if (typeof reply === 'object' && !Buffer.isBuffer(reply)) {
        close(this, out === undefined ? '' : out.toString(), reply.close)
        return
      }
      out = out === undefined ? reply : out.toString() + reply.toString()
    }
    if (out !== undefined) this.write(out)
    if (start < chunk.length) keep(this, chunk.subarray(start))
  }

  function onError(this: Socket, err: Error): void {
    if (handler.verbose()) handler.log('debug', `connection error: ${err.message}`)
  }

  return createServer({ allowHalfOpen: false }, (socket) => {
    socket.on('data', onData)
    socket.on('error', onError)
  })
}
