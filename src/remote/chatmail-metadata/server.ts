/**
 * The unix-socket server: splits each connection's bytes into lines, answers each command in
 * order, and closes a connection only on what dovecot never sends (an unknown command, a line
 * longer than dovecot's limit). Nothing a client sends can throw out of here.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { type DictCommand, lookupFailReply, MAX_LINE_LENGTH, parseCommand, replyFor } from './dict-protocol.js'
import type { Logger } from './log.js'

export interface Handler {
  /** The value for a dict key, or undefined (not found). May throw: the client then gets `F`. */
  lookup(key: string, user: string): string | undefined
  log: Logger
  verbose(): boolean
}

const NEWLINE = 0x0a
const TOO_LONG = `line longer than ${MAX_LINE_LENGTH} bytes`

/** Debug lines for what is not a lookup (lookups are logged by the handler). Never values. */
function logCommand(cmd: DictCommand, log: Logger): void {
  if (cmd.kind === 'hello')
    log('debug', `hello: protocol ${cmd.major}.${cmd.minor}, dict ${JSON.stringify(cmd.dictName)}`)
  else if (cmd.kind === 'iterate') log('debug', `iterate ${cmd.path}: no entries`)
  else if (cmd.kind === 'change') log('debug', `transaction ${cmd.id}: ${cmd.op} ${cmd.key} ignored`)
  else if (cmd.kind === 'commit') log('debug', `transaction ${cmd.id}: committed (nothing stored)`)
}

function answerLine(line: string, handler: Handler): { reply?: string; close?: string } {
  const cmd: DictCommand = parseCommand(line)
  if (cmd.kind === 'unknown') return { close: `unknown command ${JSON.stringify(cmd.command)}` }
  if (handler.verbose()) logCommand(cmd, handler.log)
  try {
    const reply = replyFor(cmd, handler.lookup)
    return reply === undefined ? {} : { reply }
  } catch (err) {
    handler.log('error', `lookup failed: ${(err as Error).message}`)
    return { reply: lookupFailReply('chatmail-metadata: internal error') }
  }
}

class Connection {
  /** Bytes of a line whose newline has not arrived yet. */
  private pending: Buffer[] = []
  private pendingBytes = 0

  constructor(
    private readonly socket: Socket,
    private readonly handler: Handler,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => {
      if (handler.verbose()) handler.log('debug', `connection error: ${err.message}`)
    })
  }

  private onData(chunk: Buffer): void {
    let start = 0
    let out = ''
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const line = this.takeLine(chunk.subarray(start, nl))
      start = nl + 1
      const { reply, close } = line === undefined ? { close: TOO_LONG } : answerLine(line, this.handler)
      if (reply) out += reply
      if (close) {
        this.close(out, close)
        return
      }
    }
    if (out) this.socket.write(out)
    if (start < chunk.length) this.keep(chunk.subarray(start))
  }

  /** The whole line as text, or undefined if it is longer than dovecot allows. */
  private takeLine(tail: Buffer): string | undefined {
    if (this.pendingBytes === 0) return tail.length > MAX_LINE_LENGTH ? undefined : tail.toString('utf8')
    const bytes = this.pendingBytes + tail.length
    const line = Buffer.concat([...this.pending, tail], bytes)
    this.pending = []
    this.pendingBytes = 0
    return bytes > MAX_LINE_LENGTH ? undefined : line.toString('utf8')
  }

  private keep(part: Buffer): void {
    this.pending.push(Buffer.from(part))
    this.pendingBytes += part.length
    if (this.pendingBytes > MAX_LINE_LENGTH) this.close('', TOO_LONG)
  }

  private close(out: string, reason: string): void {
    this.handler.log('warn', `closing a dict connection: ${reason}`)
    this.pending = []
    this.pendingBytes = 0
    this.socket.removeAllListeners('data')
    this.socket.end(out)
  }
}

/** The caller listens, and handles the server's own errors. */
export function createDictServer(handler: Handler): Server {
  return createServer({ allowHalfOpen: false }, (socket) => new Connection(socket, handler))
}
