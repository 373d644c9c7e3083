#!/usr/bin/env node
// STAND-IN for the iroh-relay v0.35.0 binary. It is a test double, NOT the real relay: the real binary
// cannot be downloaded in the test environment. It implements, from the protocol facts in
// research/protocols.md section C, the relay's HTTP surface (C.1) and the 0.35 relay protocol (C.2)
// over both upgrade variants (`Upgrade: iroh derp http` and a plain websocket without subprotocol).
//
// Self-contained on purpose: plain JavaScript, no npm packages, runs on Node 18 and 20, so it can be
// packaged as a fake `iroh-relay` executable (a shell wrapper) for end-to-end deploy tests.
//
//   node iroh-relay-standin.mjs --config-path iroh-relay.toml     (reads http_bind_addr)
//   node iroh-relay-standin.mjs --listen 127.0.0.1:3340
//
// Fault injection, env STANDIN_FAULT=
//   404       404 on /relay            200  200 instead of 101
//   nopong    never answer Ping        noforward  drop every SendPacket
//   v1        behave like a 1.x relay: require and echo the websocket subprotocol iroh-relay-v1, then
//             send a ServerChallenge (and never complete the handshake)
// STANDIN_PING_MS: interval of the server's own Pings (default 15000, 0 = off).
// STANDIN_VERBOSE=1 logs frames on stderr. On SIGTERM/SIGINT a final `stand-in stats {json}` line is printed.
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { pathToFileURL } from 'node:url'

const FRAME = {
  ClientInfo: 2,
  SendPacket: 4,
  RecvPacket: 5,
  KeepAlive: 6,
  NotePreferred: 7,
  PeerGone: 8,
  Ping: 12,
  Pong: 13,
  Health: 14,
}
const MAGIC = Buffer.from('RELAY🔑', 'utf8')
const KEY_LEN = 32
const SIG_LEN = 64
const PROTOCOL_VERSION = 3
const MAX_FRAME = 1024 * 1024
const MAX_PACKET = 64 * 1024
const CLIENT_INFO_WAIT_MS = 10_000
const MAX_HEAD = 16 * 1024
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const COMMON_HEADERS = [
  'Strict-Transport-Security: max-age=63072000; includeSubDomains',
  "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'self'; block-all-mixed-content; plugin-types 'none'",
]
const INDEX_HTML =
  '<html><body>\n<h1>Iroh Relay</h1>\n<p>\n  This is an <a href="https://iroh.computer">Iroh</a> Relay server (stand-in).\n</p>\n'

// ------------------------------------------------------------------ config

/** Tiny TOML line reader: top-level `key = value` pairs (strings, numbers, booleans) and [section] keys. */
export function readToml(text) {
  const out = {}
  let section = ''
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '')
    if (line === '' || line.startsWith('#')) continue
    const sec = /^\[([^\]]+)\]$/.exec(line)
    if (sec) {
      section = `${sec[1].trim()}.`
      continue
    }
    const kv = /^([A-Za-z0-9_.-]+)\s*=\s*(.+)$/.exec(line)
    if (!kv) continue
    let value = kv[2].replace(/\s+#.*$/, '')
    const str = /^"((?:[^"\\]|\\.)*)"$/.exec(value) || /^'([^']*)'$/.exec(value)
    if (str) value = str[1]
    else if (value === 'true' || value === 'false') value = value === 'true'
    else if (/^[+-]?\d+(\.\d+)?$/.test(value)) value = Number(value)
    out[section + kv[1]] = value
  }
  return out
}

/** "[::]:3340" / "127.0.0.1:0" → { host, port }. */
export function parseBindAddr(addr) {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) || /^([^:]+):(\d+)$/.exec(addr)
  if (!m) throw new Error(`bad bind address "${addr}" (expected HOST:PORT or [V6]:PORT)`)
  return { host: m[1], port: Number(m[2]) }
}

function parseArgs(argv) {
  let listen
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--config-path' || a === '-c') {
      const toml = readToml(readFileSync(argv[++i], 'utf8'))
      if (toml.enable_relay === false) throw new Error('enable_relay = false: the stand-in only implements the relay')
      listen = parseBindAddr(String(toml.http_bind_addr ?? '[::]:80'))
    } else if (a === '--listen') {
      listen = parseBindAddr(argv[++i])
    } else if (a === '--dev') {
      listen = listen ?? parseBindAddr('[::]:3340')
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: iroh-relay-standin.mjs (--config-path FILE | --listen HOST:PORT | --dev)\n')
      process.exit(0)
    } else {
      throw new Error(`unknown argument ${a}`)
    }
  }
  if (!listen) throw new Error('need --config-path FILE or --listen HOST:PORT')
  return listen
}

// ------------------------------------------------------------------ framing

function derpFrame(type, payload) {
  const out = Buffer.alloc(5 + payload.length)
  out[0] = type
  out.writeUInt32BE(payload.length, 1)
  payload.copy(out, 5)
  return out
}

function wsFrame(opcode, payload) {
  const len = payload.length
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  head[0] = 0x80 | opcode
  if (len < 126) head[1] = len
  else if (len < 65536) {
    head[1] = 126
    head.writeUInt16BE(len, 2)
  } else {
    head[1] = 127
    head.writeBigUInt64BE(BigInt(len), 2)
  }
  return Buffer.concat([head, payload])
}

/** Pulls derp frames out of a byte stream. */
function derpReader(onFrame) {
  let buf = Buffer.alloc(0)
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1)
      if (len > MAX_FRAME) throw new Error(`frame length ${len} too large`)
      if (buf.length < 5 + len) break
      const type = buf[0]
      const payload = Buffer.from(buf.subarray(5, 5 + len))
      buf = buf.subarray(5 + len)
      onFrame(type, payload)
    }
  }
}

/** Pulls websocket messages (client frames are masked) out of a byte stream. */
function wsReader(onMessage) {
  let buf = Buffer.alloc(0)
  let fragments = []
  let fragOpcode = 0
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
    for (;;) {
      if (buf.length < 2) return
      const fin = (buf[0] & 0x80) !== 0
      const opcode = buf[0] & 0x0f
      const masked = (buf[1] & 0x80) !== 0
      let len = buf[1] & 0x7f
      let at = 2
      if (len === 126) {
        if (buf.length < 4) return
        len = buf.readUInt16BE(2)
        at = 4
      } else if (len === 127) {
        if (buf.length < 10) return
        const big = buf.readBigUInt64BE(2)
        if (big > BigInt(MAX_FRAME + 1)) throw new Error('websocket frame too large')
        len = Number(big)
        at = 10
      }
      if (!masked) throw new Error('unmasked websocket frame from a client')
      if (buf.length < at + 4 + len) return
      const mask = buf.subarray(at, at + 4)
      const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len))
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3]
      buf = buf.subarray(at + 4 + len)
      if (opcode >= 8) onMessage(opcode, payload)
      else if (opcode !== 0 && fin) onMessage(opcode, payload)
      else {
        if (opcode !== 0) fragOpcode = opcode
        fragments.push(payload)
        if (fin) {
          const whole = Buffer.concat(fragments)
          fragments = []
          onMessage(fragOpcode, whole)
        }
      }
    }
  }
}

// ------------------------------------------------------------------ the relay

export function startStandIn({ host = '127.0.0.1', port = 0, fault = '', pingMs = 15_000, verbose = false } = {}) {
  const clients = new Map() // hex key → session
  const stats = { connections: 0, registered: 0, packetsForwarded: 0, bytesForwarded: 0, packetsDropped: 0, pings: 0 }
  const log = verbose ? (...a) => process.stderr.write(`stand-in: ${a.join(' ')}\n`) : () => {}
  const sockets = new Set()

  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let head = Buffer.alloc(0)
    const onData = (chunk) => {
      head = head.length ? Buffer.concat([head, chunk]) : chunk
      for (;;) {
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) {
          if (head.length > MAX_HEAD) httpReply(socket, 431, 'Request Header Fields Too Large', [], '', true)
          return
        }
        const req = parseRequest(head.subarray(0, end).toString('latin1'))
        const rest = head.subarray(end + 4)
        head = Buffer.alloc(0)
        if (!req) {
          httpReply(socket, 400, 'Bad Request', [], '', true)
          return
        }
        if (req.path.split('?')[0] === '/relay' || req.path.split('?')[0] === '/derp') {
          socket.off('data', onData)
          handleRelay(socket, req, rest)
          return
        }
        const skip = Number(req.headers['content-length'] || 0)
        head = rest.subarray(Math.min(skip, rest.length))
        const close = (req.headers.connection || '').toLowerCase() === 'close' || req.version === '1.0'
        handleHttp(socket, req, close)
        if (close) return
      }
    }
    socket.on('data', onData)
  })

  function handleHttp(socket, req, close) {
    const path = req.path.split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return httpReply(socket, 404, 'Not Found', [], 'Not Found', close)
    if (path === '/ping') return httpReply(socket, 200, 'OK', ['Access-Control-Allow-Origin: *'], '', close)
    if (path === '/generate_204') {
      const c = req.headers['x-tailscale-challenge']
      const extra = c && /^[A-Za-z0-9._-]{1,63}$/.test(c) ? [`X-Tailscale-Response: response ${c}`] : []
      return httpReply(socket, 204, 'No Content', extra, '', close)
    }
    if (path === '/' || path === '/index.html') {
      return httpReply(socket, 200, 'OK', ['Content-Type: text/html; charset=utf-8'], INDEX_HTML, close)
    }
    if (path === '/robots.txt') return httpReply(socket, 200, 'OK', [], 'User-agent: *\nDisallow: /\n', close)
    return httpReply(socket, 404, 'Not Found', [], 'Not Found', close)
  }

  function handleRelay(socket, req, rest) {
    const upgrade = (req.headers.upgrade || '').toLowerCase()
    log(`${req.method} ${req.path} upgrade="${upgrade}"`)
    if (req.method !== 'GET' || fault === '404') return httpReply(socket, 404, 'Not Found', [], 'Not Found', true)
    if (fault === '200')
      return httpReply(socket, 200, 'OK', ['Content-Type: text/html; charset=utf-8'], INDEX_HTML, true)
    if (upgrade === 'iroh derp http') {
      if (fault === 'v1') return httpReply(socket, 400, 'Bad Request', [], '', true)
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: iroh derp http\r\n\r\n')
      return startSession(socket, 'derp', rest)
    }
    if (upgrade === 'websocket') {
      const key = req.headers['sec-websocket-key']
      if (req.headers['sec-websocket-version'] !== '13') {
        return httpReply(socket, 400, 'Bad Request', ['Sec-WebSocket-Version: 13'], '', true)
      }
      if (!key) return httpReply(socket, 400, 'Bad Request', [], '', true)
      const accept = createHash('sha1')
        .update(key + WS_GUID)
        .digest('base64')
      const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: upgrade']
      lines.push(`Sec-WebSocket-Accept: ${accept}`)
      if (fault === 'v1') {
        const offered = (req.headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim())
        if (!offered.includes('iroh-relay-v1')) return httpReply(socket, 400, 'Bad Request', [], '', true)
        lines.push('Sec-WebSocket-Protocol: iroh-relay-v1')
        socket.write(`${lines.join('\r\n')}\r\n\r\n`)
        // 1.x: the server speaks first, a ServerChallenge (frame type varint 0, 16 random bytes).
        socket.write(wsFrame(2, Buffer.concat([Buffer.from([0]), randomBytes(16)])))
        const t = setTimeout(() => socket.destroy(), CLIENT_INFO_WAIT_MS)
        socket.on('close', () => clearTimeout(t))
        return
      }
      // A real 0.35 relay selects no subprotocol, whatever the client offers.
      socket.write(`${lines.join('\r\n')}\r\n\r\n`)
      return startSession(socket, 'websocket', rest)
    }
    return httpReply(socket, 400, 'Bad Request', [], '', true)
  }

  function startSession(socket, variant, rest) {
    stats.connections++
    const session = { socket, variant, key: null, hex: null, sentTo: new Set(), closed: false }
    const send = (type, payload) => {
      if (session.closed) return
      if (variant === 'derp') socket.write(derpFrame(type, payload))
      else socket.write(wsFrame(2, Buffer.concat([Buffer.from([type]), payload])))
    }
    session.send = send
    const waitInfo = setTimeout(() => {
      log('no ClientInfo within 10 s, closing')
      socket.destroy()
    }, CLIENT_INFO_WAIT_MS)
    let pinger = null
    const onFrame = (type, payload) => {
      if (!session.key) {
        if (type !== FRAME.ClientInfo) throw new Error(`first frame is type ${type}, not ClientInfo`)
        register(session, payload)
        clearTimeout(waitInfo)
        if (pingMs > 0) pinger = setInterval(() => send(FRAME.Ping, randomBytes(8)), pingMs)
        return
      }
      handleFrame(session, type, payload)
    }
    const feed =
      variant === 'derp'
        ? derpReader(onFrame)
        : wsReader((opcode, payload) => {
            if (opcode === 2) {
              if (payload.length < 1) throw new Error('empty websocket message')
              onFrame(payload[0], payload.subarray(1))
            } else if (opcode === 9) socket.write(wsFrame(10, payload))
            else if (opcode === 8) {
              socket.end(wsFrame(8, payload.subarray(0, 2)))
            } else if (opcode === 1) throw new Error('text websocket message')
          })
    const onData = (chunk) => {
      try {
        feed(chunk)
      } catch (err) {
        log(`closing ${session.hex ?? 'unregistered client'}: ${err.message}`)
        socket.destroy()
      }
    }
    socket.on('data', onData)
    socket.on('close', () => {
      session.closed = true
      clearTimeout(waitInfo)
      if (pinger) clearInterval(pinger)
      unregister(session)
    })
    if (rest.length > 0) onData(rest)
  }

  function register(session, payload) {
    const info = parseClientInfo(payload)
    if (info.version !== PROTOCOL_VERSION) throw new Error(`ClientInfo version ${info.version}`)
    if (!info.valid) throw new Error('ClientInfo signature does not verify')
    session.key = info.key
    session.hex = info.key.toString('hex')
    const old = clients.get(session.hex)
    if (old && old !== session) old.socket.destroy()
    clients.set(session.hex, session)
    stats.registered++
    log(`registered ${session.hex} (${session.variant})`)
  }

  function unregister(session) {
    if (!session.hex || clients.get(session.hex) !== session) return
    clients.delete(session.hex)
    log(`gone ${session.hex}`)
    for (const dst of session.sentTo) clients.get(dst)?.send(FRAME.PeerGone, session.key)
  }

  function handleFrame(session, type, payload) {
    switch (type) {
      case FRAME.SendPacket: {
        if (payload.length < KEY_LEN) throw new Error('SendPacket without a destination key')
        if (payload.length - KEY_LEN > MAX_PACKET) throw new Error('packet larger than 64 KiB')
        const dst = payload.subarray(0, KEY_LEN).toString('hex')
        const peer = clients.get(dst)
        if (fault === 'noforward' || !peer) {
          stats.packetsDropped++
          return
        }
        session.sentTo.add(dst)
        peer.send(FRAME.RecvPacket, Buffer.concat([session.key, payload.subarray(KEY_LEN)]))
        stats.packetsForwarded++
        stats.bytesForwarded += payload.length - KEY_LEN
        return
      }
      case FRAME.Ping:
        if (payload.length !== 8) throw new Error('Ping without 8 bytes')
        stats.pings++
        if (fault !== 'nopong') session.send(FRAME.Pong, payload)
        return
      default:
        return // Pong, KeepAlive, NotePreferred and unknown frames need no answer
    }
  }

  function parseClientInfo(payload) {
    const min = MAGIC.length + KEY_LEN + SIG_LEN + 1
    if (payload.length < min || !payload.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('bad ClientInfo')
    const key = Buffer.from(payload.subarray(MAGIC.length, MAGIC.length + KEY_LEN))
    const sig = payload.subarray(MAGIC.length + KEY_LEN, MAGIC.length + KEY_LEN + SIG_LEN)
    const message = payload.subarray(MAGIC.length + KEY_LEN + SIG_LEN)
    if (message.length !== 1) throw new Error('ClientInfo message is not one byte')
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') }, format: 'jwk' })
    return { key, version: message[0], valid: verify(null, message, pub, sig) }
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      const addr = server.address()
      resolve({
        host: addr.address,
        port: addr.port,
        stats,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          }),
      })
    })
  })
}

function parseRequest(text) {
  const [line, ...rest] = text.split('\r\n')
  const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(line)
  if (!m) return null
  const headers = {}
  for (const h of rest) {
    const i = h.indexOf(':')
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim()
  }
  return { method: m[1], path: m[2], version: m[3], headers }
}

function httpReply(socket, status, reason, extra, body, close) {
  const b = Buffer.from(body, 'utf8')
  const lines = [`HTTP/1.1 ${status} ${reason}`, ...COMMON_HEADERS, ...extra]
  if (status !== 204) lines.push(`Content-Length: ${b.length}`)
  if (close) lines.push('Connection: close')
  lines.push(`Date: ${new Date().toUTCString()}`)
  socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  if (status !== 204 && b.length > 0) socket.write(b)
  if (close) socket.end()
}

async function main() {
  const listen = parseArgs(process.argv.slice(2))
  const fault = process.env.STANDIN_FAULT || ''
  const pingMs = process.env.STANDIN_PING_MS === undefined ? 15_000 : Number(process.env.STANDIN_PING_MS)
  const relay = await startStandIn({ ...listen, fault, pingMs, verbose: process.env.STANDIN_VERBOSE === '1' })
  const shown = relay.host.includes(':') ? `[${relay.host}]` : relay.host
  process.stdout.write(
    `iroh-relay STAND-IN (test double for iroh-relay v0.35.0, not the real binary) listening on http://${shown}:${relay.port}${fault ? ` fault=${fault}` : ''}\n`,
  )
  const stop = () => {
    process.stdout.write(`stand-in stats ${JSON.stringify(relay.stats)}\n`)
    relay.close().then(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

// IROH_RELAY_STANDIN_MAIN=1: run as a program when loaded with `node -e` (the packaged stand-in,
// see test/helpers/standin-tarball.ts), where there is no file URL to compare with.
const isMain =
  process.env.IROH_RELAY_STANDIN_MAIN === '1' ||
  (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
if (isMain) {
  main().catch((err) => {
    process.stderr.write(`iroh-relay stand-in: ${err.message}\n`)
    process.exit(1)
  })
}
