/**
 * One DNS question to one server, as `dig +norec @server` asks it: UDP with EDNS0, TCP when the
 * answer is truncated. Messages are encoded and decoded by dns-packet (no I/O of its own); this
 * file is the transport. Recursion is not asked for unless the caller wants it, so an
 * authoritative server answers from its zone and a lame one shows itself (no AA flag).
 */
import { randomInt } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { isIP, createConnection as tcpConnect } from 'node:net'
import dnsPacket from 'dns-packet'
import { usageError } from '../lib/errors.js'
import type { RrType } from './zone.js'

export interface NameServer {
  /** An IP address. */
  address: string
  port: number
  /** The NS name it was found as, for messages. */
  name?: string
}

/** A resource record as the checks need it: owner, type, and rdata in presentation-like form. */
export interface Rr {
  name: string
  type: string
  ttl: number
  /** A/AAAA: address; CNAME/NS: target (no trailing dot); MX: `pref exchange`; TXT: the strings joined; SRV: `prio weight port target`; CAA: `flags tag value`. */
  value: string
}

export interface DnsResponse {
  rcode: string
  /** The AA flag: the server answered from a zone it is authoritative for. */
  authoritative: boolean
  answers: Rr[]
  authorities: Rr[]
  additionals: Rr[]
}

export interface QueryOptions {
  recursion?: boolean
  timeoutMs?: number
  signal?: AbortSignal
}

export class DnsQueryError extends Error {}

const MAX_TCP_MESSAGE = 65_535 + 2

/** Lower case, no trailing dot. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

export function describeServer(s: NameServer): string {
  const addr = s.address.includes(':') ? `[${s.address}]` : s.address
  const where = s.port === 53 ? addr : `${addr}:${s.port}`
  return s.name && s.name !== s.address ? `${s.name} (${where})` : where
}

/** Parses `HOST[:PORT]`, `[V6]:PORT` or a bare IPv6 address; the host must be an IP address here. */
export function parseNameServer(text: string): NameServer | undefined {
  const t = text.trim()
  let host = t
  let port = 53
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t)
  if (bracket) {
    host = bracket[1] as string
    if (bracket[2]) port = Number(bracket[2])
  } else if (isIP(t) !== 6) {
    const m = /^([^:]+)(?::(\d+))?$/.exec(t)
    if (!m) return undefined
    host = m[1] as string
    if (m[2]) port = Number(m[2])
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { address: host, port }
}

/** --nameserver as a NameServer, or a usage error. */
export function nameServerFlag(text: string | undefined): NameServer | undefined {
  if (text === undefined) return undefined
  const ns = parseNameServer(text)
  if (!ns || !isIP(ns.address)) {
    throw usageError(
      `--nameserver ${text} is not an IP address with an optional port`,
      'e.g. 192.0.2.53 or 127.0.0.1:5353',
    )
  }
  return ns
}

export async function query(
  server: NameServer,
  name: string,
  type: RrType | 'NS' | 'SOA',
  o: QueryOptions = {},
): Promise<DnsResponse> {
  const timeoutMs = o.timeoutMs ?? 3000
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: randomInt(0, 65536),
    flags: o.recursion ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ type, name: normalName(name), class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer],
  }
  let raw = await udpExchange(server, dnsPacket.encode(packet), packet.id as number, timeoutMs, o.signal)
  let decoded = decode(raw, server)
  if (decoded.flag_tc) {
    raw = await tcpExchange(server, dnsPacket.streamEncode(packet), timeoutMs, o.signal)
    decoded = decode(raw, server)
  }
  if (decoded.id !== packet.id) throw new DnsQueryError(`${describeServer(server)} answered another question`)
  const q = decoded.questions?.[0]
  if (!q || normalName(q.name) !== normalName(name) || q.type !== type) {
    throw new DnsQueryError(`${describeServer(server)} answered another question`)
  }
  return {
    rcode: (decoded as unknown as { rcode: string }).rcode,
    authoritative: decoded.flag_aa,
    answers: (decoded.answers ?? []).flatMap(toRr),
    authorities: (decoded.authorities ?? []).flatMap(toRr),
    additionals: (decoded.additionals ?? []).flatMap(toRr),
  }
}

function decode(raw: Buffer, server: NameServer): dnsPacket.DecodedPacket {
  try {
    return dnsPacket.decode(raw)
  } catch (err) {
    throw new DnsQueryError(`${describeServer(server)} sent a malformed answer (${(err as Error).message})`)
  }
}

function toRr(a: dnsPacket.Answer): Rr[] {
  if (a.type === 'OPT') return []
  const base = { name: normalName(a.name), type: a.type, ttl: a.ttl ?? 0 }
  switch (a.type) {
    case 'A':
    case 'AAAA':
      return [{ ...base, value: String(a.data) }]
    case 'CNAME':
    case 'NS':
    case 'PTR':
    case 'DNAME':
      return [{ ...base, value: normalName(String(a.data)) }]
    case 'MX':
      return [{ ...base, value: `${a.data.preference} ${normalName(a.data.exchange)}` }]
    case 'TXT': {
      const parts = Array.isArray(a.data) ? a.data : [a.data]
      return [{ ...base, value: parts.map((p) => (typeof p === 'string' ? p : p.toString('utf8'))).join('') }]
    }
    case 'SRV':
      return [
        {
          ...base,
          value: `${a.data.priority ?? 0} ${a.data.weight ?? 0} ${a.data.port ?? 0} ${normalName(a.data.target)}`,
        },
      ]
    case 'CAA':
      return [{ ...base, value: `${a.data.flags ?? 0} ${a.data.tag} "${a.data.value}"` }]
    case 'SOA':
      return [{ ...base, value: `${normalName(a.data.mname)} ${a.data.serial}` }]
    default:
      return [{ ...base, value: '' }]
  }
}

function abortError(signal: AbortSignal | undefined): DnsQueryError {
  return new DnsQueryError(signal?.reason instanceof Error ? signal.reason.message : 'aborted')
}

function udpExchange(
  server: NameServer,
  message: Buffer,
  id: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const socket = createSocket(isIP(server.address) === 6 ? 'udp6' : 'udp4')
    let tries = 0
    let timer: NodeJS.Timeout | undefined
    const done = (err: Error | undefined, value?: Buffer) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.close()
      if (err) reject(err)
      else resolve(value as Buffer)
    }
    const onAbort = () => done(abortError(signal))
    signal?.addEventListener('abort', onAbort, { once: true })
    // Two tries in the time allowed: one lost datagram should not fail a check.
    const send = () => {
      tries++
      socket.send(message, server.port, server.address, (err) => {
        if (err) done(new DnsQueryError(`cannot send to ${describeServer(server)}: ${err.message}`))
      })
      timer = setTimeout(
        () =>
          tries < 2 ? send() : done(new DnsQueryError(`${describeServer(server)} did not answer in ${timeoutMs} ms`)),
        Math.ceil(timeoutMs / 2),
      )
    }
    socket.on('error', (err) => done(new DnsQueryError(`${describeServer(server)}: ${err.message}`)))
    socket.on('message', (msg, rinfo) => {
      // Only the server's answer to this question (same address, port and id) counts.
      if (rinfo.port !== server.port || msg.length < 2 || msg.readUInt16BE(0) !== id) return
      done(undefined, msg)
    })
    send()
  })
}

function tcpExchange(server: NameServer, message: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const socket = tcpConnect({ host: server.address, port: server.port })
    let buf = Buffer.alloc(0)
    const timer = setTimeout(
      () => done(new DnsQueryError(`${describeServer(server)} did not answer over TCP in ${timeoutMs} ms`)),
      timeoutMs,
    )
    const done = (err: Error | undefined, value?: Buffer) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      if (err) reject(err)
      else resolve(value as Buffer)
    }
    const onAbort = () => done(abortError(signal))
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('connect', () => socket.write(message))
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length > MAX_TCP_MESSAGE) return done(new DnsQueryError(`${describeServer(server)} sent too much`))
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0))
        done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)))
    })
    socket.on('error', (err) => done(new DnsQueryError(`${describeServer(server)} over TCP: ${err.message}`)))
    socket.on('end', () => done(new DnsQueryError(`${describeServer(server)} closed the TCP connection early`)))
  })
}
