/**
 * A hostile IMAP server on loopback (implicit TLS, a throw-away self-signed certificate): it
 * speaks just enough IMAP for imapflow to log in, then misbehaves one way at a time. Written
 * for the hardening tests of the doctor (issue 9, items 11-13); never a stand-in for dovecot.
 */
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer as createPlainServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:tls'
import { makeCert } from './dovecot.js'

export type HostileMode =
  /** `* OK ` and then bytes without a line end, for as long as the client reads. */
  | { kind: 'endless-greeting' }
  /** Greeting lines that never end the greeting (untagged lines, no `* OK`), forever. */
  | { kind: 'endless-lines' }
  /** Logs in, then answers GETMETADATA with a literal of `size` bytes, sent as fast as read. */
  | { kind: 'huge-literal'; size: number }
  /** Refuses the login with this text (it may hold escape sequences). */
  | { kind: 'login-refused'; text: string }
  /** Logs in, then answers GETMETADATA with these values (as literals, so any byte goes). */
  | { kind: 'metadata'; values: Record<string, string> }

export interface HostileImap {
  host: string
  port: number
  certPem: string
  /** Bytes the server managed to write to clients, in all. */
  bytesSent(): number
  stop(): Promise<void>
}

const CAPS = 'IMAP4rev1 METADATA'
const CHUNK = Buffer.alloc(64 * 1024, 'A')

/** Writes `chunk` again and again while the client keeps reading, until `limit` bytes or close. */
function flood(socket: Socket, chunk: Buffer, limit: number, count: (n: number) => void): void {
  let sent = 0
  const pump = () => {
    while (!socket.destroyed && sent < limit) {
      sent += chunk.length
      count(chunk.length)
      if (!socket.write(chunk)) return void socket.once('drain', pump)
    }
  }
  pump()
}

/** `plain`: no TLS at all (the endless modes then stand for a STARTTLS port, port 143). */
export async function startHostileImap(mode: HostileMode, o: { plain?: boolean } = {}): Promise<HostileImap> {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-hostile-imap-'))
  const { cert, key } = makeCert(dir, { name: 'localhost', altNames: ['IP:127.0.0.1'] })
  const certPem = readFileSync(cert, 'utf8')
  let sent = 0
  const count = (n: number) => {
    sent += n
  }
  const sockets = new Set<Socket>()
  const serve = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    const write = (text: string | Buffer) => {
      if (socket.destroyed) return
      count(text.length)
      socket.write(text)
    }
    if (mode.kind === 'endless-greeting') {
      write('* OK ')
      return flood(socket, CHUNK, Number.POSITIVE_INFINITY, count)
    }
    if (mode.kind === 'endless-lines') {
      return flood(socket, Buffer.from('* NOTE still saying hello\r\n'.repeat(2048)), Number.POSITIVE_INFINITY, count)
    }
    write(`* OK [CAPABILITY ${CAPS}] hostile test server ready\r\n`)
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      const lines = buffered.split('\r\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) answer(line)
    })
    const answer = (line: string) => {
      const [tag, command = ''] = line.split(' ')
      switch (command.toUpperCase()) {
        case 'CAPABILITY':
          return write(`* CAPABILITY ${CAPS}\r\n${tag} OK done\r\n`)
        case 'LOGIN':
          if (mode.kind === 'login-refused') return write(`${tag} NO [AUTHENTICATIONFAILED] ${mode.text}\r\n`)
          return write(`${tag} OK [CAPABILITY ${CAPS}] logged in\r\n`)
        case 'GETMETADATA':
          if (mode.kind === 'huge-literal') {
            write(`* METADATA "" (/shared/vendor/deltachat/irohrelay {${mode.size}}\r\n`)
            return flood(socket, CHUNK, mode.size, count)
          }
          if (mode.kind === 'metadata') {
            const pairs = Object.entries(mode.values).map(([k, v]) => `${k} {${Buffer.byteLength(v)}}\r\n${v}`)
            return write(`* METADATA "" (${pairs.join(' ')})\r\n${tag} OK done\r\n`)
          }
          return write(`${tag} OK done\r\n`)
        case 'LOGOUT':
          write(`* BYE bye\r\n${tag} OK done\r\n`)
          return socket.end()
        default:
          return write(`${tag} OK done\r\n`)
      }
    }
  }
  const server = o.plain ? createPlainServer(serve) : createServer({ cert: certPem, key: readFileSync(key) }, serve)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    certPem,
    bytesSent: () => sent,
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
