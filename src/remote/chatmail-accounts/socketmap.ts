/**
 * Postfix's socketmap protocol (socketmap_table(5)), server side: requests and replies are
 * netstrings, `<length>:<bytes>,`. A request is `<map name> <key>`; a reply `OK <value>`,
 * `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`. Postfix keeps a connection for many requests.
 * The codec is pure; the server keeps the line server's guards (idle, connection cap, sizes).
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { Logger } from '../lib/log.js'

/** Postfix's own limit for a socketmap reply is 100000 bytes; requests are addresses. */
export const MAX_REQUEST = 10_000

export type Decoded =
  | { kind: 'request'; name: string; key: string; rest: Buffer }
  | { kind: 'partial' }
  | { kind: 'bad'; reason: string }

export function encodeNetstring(text: string): Buffer {
  const body = Buffer.from(text)
  return Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(',')])
}

/** The first request in `buf`, or partial (need more bytes), or bad (close the connection). */
export function decodeRequest(buf: Buffer): Decoded {
  const colon = buf.indexOf(0x3a)
  if (colon < 0) return buf.length > 6 ? { kind: 'bad', reason: 'no length prefix' } : { kind: 'partial' }
  const lenText = buf.toString('latin1', 0, colon)
  if (!/^\d{1,5}$/.test(lenText)) return { kind: 'bad', reason: 'bad length prefix' }
  const len = Number(lenText)
  if (len > MAX_REQUEST) return { kind: 'bad', reason: `request longer than ${MAX_REQUEST} bytes` }
  if (buf.length < colon + 1 + len + 1) return { kind: 'partial' }
  if (buf[colon + 1 + len] !== 0x2c) return { kind: 'bad', reason: 'netstring without its comma' }
  const body = buf.toString('utf8', colon + 1, colon + 1 + len)
  const sp = body.indexOf(' ')
  if (sp <= 0) return { kind: 'bad', reason: 'request without a map name' }
  return { kind: 'request', name: body.slice(0, sp), key: body.slice(sp + 1), rest: buf.subarray(colon + 2 + len) }
}

export type Lookup = (name: string, key: string) => string | undefined

export function replyFor(lookup: Lookup, name: string, key: string): Buffer {
  try {
    const value = lookup(name, key)
    return encodeNetstring(value === undefined ? 'NOTFOUND ' : `OK ${value}`)
  } catch (err) {
    return encodeNetstring(`TEMP ${(err as Error).message}`)
  }
}

export interface SocketmapLimits {
  maxConnections: number
  idleMs: number
}

export function createSocketmapServer(lookup: Lookup, limits: SocketmapLimits, log: Logger): Server {
  const open = new Set<Socket>()
  return createServer((socket) => {
    if (open.size >= limits.maxConnections) {
      log('warn', `socketmap: more than ${limits.maxConnections} connections: refusing one`)
      socket.destroy()
      return
    }
    open.add(socket)
    let buf: Buffer = Buffer.alloc(0)
    socket.setTimeout(limits.idleMs, () => socket.destroy())
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      const out: Buffer[] = []
      for (;;) {
        const d = decodeRequest(buf)
        if (d.kind === 'partial') break
        if (d.kind === 'bad') {
          log('warn', `socketmap: closing a connection: ${d.reason}`)
          socket.destroy()
          return
        }
        out.push(replyFor(lookup, d.name, d.key))
        buf = d.rest
      }
      if (out.length > 0 && !socket.write(Buffer.concat(out))) {
        socket.pause()
        socket.once('drain', () => socket.resume())
      }
    })
  })
}
