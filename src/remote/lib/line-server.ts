/**
 * A unix-socket server for line protocols (dovecot's dict, postfix's socketmap framing aside),
 * hardened against clients that misbehave:
 * - backpressure: when a reply cannot be written at once (the client does not read), the
 *   connection stops reading until the socket drains; a connection whose unsent output passes
 *   `maxPendingOutput` anyway is closed;
 * - a line longer than `maxLineLength` closes the connection;
 * - idle connections (no byte for `idleMs`) are closed;
 * - unfinished lines of all connections together are held up to `maxPartialBytes`; a connection
 *   that would pass it is closed (healthy clients send whole lines and hold nothing);
 * - fairness: a read is answered BUSY_LINES lines at a time, one batch per connection per turn
 *   of the event loop, so a flood on a few connections cannot starve new ones (dovecot sends a
 *   line or a few at a time);
 * - at most `maxConnections` at once: a new connection beyond it closes the one that has been
 *   quiet the longest (an attacker's idle sockets go first, healthy short lookups get through).
 * Replies go out in the order of their lines, also when some are computed asynchronously.
 * The sync path (most lookups) costs no promise and no closure per connection.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { Logger } from './log.js'

export interface Limits {
  maxLineLength: number
  maxConnections: number
  idleMs: number
  maxPendingOutput: number
  /** Bytes of unfinished lines held for all connections together. */
  maxPartialBytes: number
  /** How the log names a connection, e.g. `dict connection`. */
  name: string
}

export const DEFAULT_LIMITS: Omit<Limits, 'maxLineLength'> = {
  maxConnections: 1024,
  idleMs: 60_000,
  maxPendingOutput: 128 * 1024,
  maxPartialBytes: 16 * 1024 * 1024,
  name: 'connection',
}

/** What a line asks of the connection besides a reply. */
export interface Close {
  close: string
}
export type Reply = string | Buffer | Close | undefined
export type LineHandler = (line: string, first: number) => Reply | Promise<Reply>

const NEWLINE = 0x0a
const BUSY_LINES = 64

interface Conn {
  parts: Buffer[] | undefined
  bytes: number
  /** Replies waiting for an earlier asynchronous one. */
  queue: (Reply | Promise<Reply>)[] | undefined
  /** A `then` is attached to the queue's head. */
  waiting: boolean
  /** The rest of a busy read waits for the next turn of the event loop. */
  resting: boolean
  paused: boolean
  closing: boolean
}

function isClose(r: Reply): r is Close {
  return typeof r === 'object' && !Buffer.isBuffer(r)
}

export function createLineServer(onLine: LineHandler, limits: Limits, log: Logger, verbose: () => boolean): Server {
  const conns = new Map<Socket, Conn>()
  let partialBytes = 0
  const tooLong = `line longer than ${limits.maxLineLength} bytes`

  function close(socket: Socket, reason: string, out?: string | Buffer): void {
    const c = conns.get(socket)
    if (c) {
      c.closing = true
      partialBytes -= c.bytes
      c.bytes = 0
      c.parts = undefined
    }
    conns.delete(socket)
    if (verbose() || !reason.startsWith('idle')) log('warn', `closing a ${limits.name}: ${reason}`)
    socket.removeAllListeners('data')
    if (out === undefined) socket.destroy()
    else socket.end(out)
  }

  function touch(socket: Socket, c: Conn): void {
    // Map order = least recently active first.
    conns.delete(socket)
    conns.set(socket, c)
  }

  function send(socket: Socket, c: Conn, out: string | Buffer): void {
    if (socket.write(out)) return
    if (socket.writableLength > limits.maxPendingOutput) {
      close(socket, `more than ${limits.maxPendingOutput} bytes of replies unread`)
      return
    }
    if (!c.paused) {
      c.paused = true
      socket.pause()
      socket.once('drain', () => {
        c.paused = false
        if (!c.closing && !c.resting) socket.resume()
      })
    }
  }

  /** Writes queued replies in order until one is still pending. */
  function flush(socket: Socket, c: Conn): void {
    const q = c.queue
    if (c.waiting) return
    while (q && q.length > 0 && !c.closing) {
      const head = q[0]
      if (head instanceof Promise) {
        c.waiting = true
        head.then(
          (r) => {
            c.waiting = false
            q[0] = r
            flush(socket, c)
          },
          (err: unknown) => {
            c.waiting = false
            log('error', `a lookup failed: ${(err as Error).message}`)
            q[0] = { close: 'internal error' }
            flush(socket, c)
          },
        )
        return
      }
      q.shift()
      if (head === undefined) continue
      if (isClose(head)) {
        close(socket, head.close, '')
        return
      }
      send(socket, c, head)
    }
    c.queue = undefined
  }

  function deliver(socket: Socket, c: Conn, reply: Reply | Promise<Reply>, out: (string | Buffer)[]): boolean {
    if (c.queue) {
      c.queue.push(reply)
      return true
    }
    if (reply instanceof Promise) {
      c.queue = [reply]
      return true
    }
    if (reply === undefined) return true
    if (isClose(reply)) {
      close(socket, reply.close, out.length > 0 ? Buffer.concat(out.map((o) => Buffer.from(o))) : '')
      return false
    }
    out.push(reply)
    return true
  }

  function onData(this: Socket, chunk: Buffer): void {
    const c = conns.get(this)
    if (c === undefined || c.closing) return
    touch(this, c)
    let start = 0
    let lines = 0
    const out: (string | Buffer)[] = []
    let rest: Buffer | undefined
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      if (++lines > BUSY_LINES && c.parts === undefined) {
        rest = chunk.subarray(start)
        break
      }
      let line: string | undefined
      let first: number
      if (c.parts === undefined) {
        first = nl > start ? (chunk[start] as number) : NEWLINE
        line = nl - start > limits.maxLineLength ? undefined : chunk.toString('utf8', start, nl)
      } else {
        const bytes = c.bytes + nl - start
        const whole = Buffer.concat([...c.parts, chunk.subarray(start, nl)], bytes)
        partialBytes -= c.bytes
        c.parts = undefined
        c.bytes = 0
        first = bytes > 0 ? (whole[0] as number) : NEWLINE
        line = bytes > limits.maxLineLength ? undefined : whole.toString('utf8')
      }
      start = nl + 1
      let reply: Reply | Promise<Reply>
      try {
        reply = line === undefined ? { close: tooLong } : onLine(line, first)
      } catch (err) {
        log('error', `a line failed: ${(err as Error).message}`)
        reply = { close: 'internal error' }
      }
      if (!deliver(this, c, reply, out)) return
    }
    if (out.length === 1) send(this, c, out[0] as string | Buffer)
    else if (out.length > 1) send(this, c, Buffer.concat(out.map((o) => (Buffer.isBuffer(o) ? o : Buffer.from(o)))))
    if (c.queue) flush(this, c)
    if (rest !== undefined) {
      if (!c.closing) {
        c.resting = true
        this.pause()
        setImmediate(later, this, c, rest)
      }
      return
    }
    if (start < chunk.length && !c.closing) {
      const part = chunk.subarray(start)
      c.parts ??= []
      c.parts.push(Buffer.from(part))
      c.bytes += part.length
      partialBytes += part.length
      if (c.bytes > limits.maxLineLength) close(this, tooLong)
      else if (partialBytes > limits.maxPartialBytes) {
        close(this, `unfinished lines of all connections hold more than ${limits.maxPartialBytes} bytes`)
      }
    }
  }

  function later(socket: Socket, c: Conn, rest: Buffer): void {
    c.resting = false
    if (c.closing) return
    onData.call(socket, rest)
    if (!c.paused && !c.resting && !c.closing) socket.resume()
  }

  function onError(this: Socket, err: Error): void {
    if (verbose()) log('debug', `connection error: ${err.message}`)
  }

  function onClose(this: Socket): void {
    const c = conns.get(this)
    if (c) partialBytes -= c.bytes
    conns.delete(this)
  }

  function onTimeout(this: Socket): void {
    close(this, `idle for ${limits.idleMs / 1000} s`)
  }

  return createServer({ allowHalfOpen: false }, (socket) => {
    if (conns.size >= limits.maxConnections) {
      const oldest = conns.keys().next().value as Socket
      close(oldest, `more than ${limits.maxConnections} connections: closing the one quiet the longest`)
    }
    conns.set(socket, {
      parts: undefined,
      bytes: 0,
      queue: undefined,
      waiting: false,
      resting: false,
      paused: false,
      closing: false,
    })
    socket.setTimeout(limits.idleMs)
    socket.on('data', onData)
    socket.on('error', onError)
    socket.on('close', onClose)
    socket.on('timeout', onTimeout)
  })
}
