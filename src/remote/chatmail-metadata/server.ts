/**
 * The unix-socket server: answers each dict command in order, and closes a connection on what
 * dovecot never sends (an unknown command, a line longer than dovecot's limit) and on the abuse
 * lib/line-server.ts guards against (unread replies, idle or too many connections). Nothing a
 * client sends can throw out of here.
 *
 * Dovecot opens a new connection per lookup (hello, one lookup, close), so the per-connection path
 * is the hot one: no object or closure per connection (the listeners are shared and find their
 * socket in `this`), the reply is written synchronously from the 'data' handler, and the bytes of
 * the last lookup reply are reused while the value is the same (TURN values change once a second).
 */
import type { Server } from 'node:net'
import {
  type DictCommand,
  lookupFailReply,
  lookupReply,
  MAX_LINE_LENGTH,
  parseCommand,
  replyFor,
  tabUnescape,
} from '../lib/dict-protocol.js'
import { type Close, createLineServer, DEFAULT_LIMITS, type Limits } from '../lib/line-server.js'
import type { Logger } from '../lib/log.js'

export interface Handler {
  /** The value for a dict key, or undefined (not found). May throw: the client then gets `F`. */
  lookup(key: string, user: string): string | undefined
  log: Logger
  verbose(): boolean
}

const LOOKUP = 0x4c // 'L'
const HELLO = 0x48 // 'H'
const INTERNAL_ERROR = lookupFailReply('chatmail-metadata: internal error')

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
export function createDictServer(handler: Handler, limits: Partial<Limits> = {}): Server {
  const lines = new Lines(handler)
  return createLineServer(
    (line, first) => lines.answer(line, first),
    { ...DEFAULT_LIMITS, maxLineLength: MAX_LINE_LENGTH, name: 'dict connection', ...limits },
    handler.log,
    handler.verbose,
  )
}
