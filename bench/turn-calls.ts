// How many calls a server's TURN carries (issue 25): relayed calls at once through a deployed
// IP-only test host (the whole stack from `deploy host`; Debian 13, BENCH_SUITE=bookworm for 12).
// A call is two allocations that relay to each other (relay to relay, as two Delta Chat users
// who both need the relay: each side's allocation sends to the other's relayed address, inside
// coturn); a session is one allocation, sending at the call's rate and receiving the other's.
// Channel data (ChannelBind, RFC 8656 §12) as browsers send it; audio rate 64 kbit/s (50 packets
// of 160 bytes a second), video rate 1 Mbit/s (125 packets of 1000 bytes). Per phase: sessions,
// packet loss, coturn's CPU (share of one core) and memory (RSS) from /proc on the host, and the
// load generator's own CPU. The generator runs on the runner, which shares its 2 cores with the
// test host: what it spends is taken from coturn.
// Goal: 500 audio-rate and 50 video-rate sessions at once under 0.5 % loss on a 2-core host.
// Run after `npm run build`, as root: npx tsx bench/turn-calls.ts
//   BENCH_TURN_PHASES="audio:500 video:50 audio:500+video:50" (default), BENCH_TURN_SECONDS=20
import { createSocket, type Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { Attr, attr, Method, type TransportAddress } from '../src/protocols/stun.js'
import { mintTurnCredential } from '../src/protocols/turn-rest.js'
import { Connection } from '../src/turn/connection.js'
import { Session } from '../src/turn/session.js'
import { startCoturn } from '../test/helpers/coturn.js'
import { startDeployedHost } from '../test/helpers/deployed-host.js'
import { type DebianSuite, guestShell, testHostSkipReason } from '../test/helpers/testhost.js'

const skip = testHostSkipReason()
if (skip) {
  console.log(`bench/turn-calls: skipped: ${skip}`)
  process.exit(0)
}

const RATES = {
  audio: { bytes: 160, perSecond: 50 },
  video: { bytes: 1000, perSecond: 125 },
} as const
type Kind = keyof typeof RATES
const SECONDS = Number(process.env.BENCH_TURN_SECONDS ?? 20)
const PHASES = (process.env.BENCH_TURN_PHASES ?? 'audio:500 video:50 audio:500+video:50').split(/\s+/).map((p) =>
  p.split('+').map((part) => {
    const [kind, n] = part.split(':') as [Kind, string]
    if (!(kind in RATES) || !(Number(n) > 0) || Number(n) % 2) throw new Error(`BENCH_TURN_PHASES: ${part}`)
    return { kind, sessions: Number(n) }
  }),
)
const CHANNEL = 0x4000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A UDP connection to the server whose channel data (first two bits 01) goes to `onChannelData`. */
class ChannelUdp extends Connection {
  readonly reliable = false
  received = 0
  /** Sequence numbers seen (for duplicates and loss). */
  highest = -1
  constructor(readonly socket: Socket) {
    super()
    socket.on('message', (b: Buffer) => {
      if ((b[0]! & 0xc0) === 0x40) {
        this.received++
        this.highest = Math.max(this.highest, b.readUInt32BE(4))
      } else this.deliver(b)
    })
    socket.on('error', (err) => this.fail(err))
  }
  send(data: Buffer): void {
    this.socket.send(data)
  }
  close(): void {
    try {
      this.socket.close()
    } catch {
      // closed already
    }
  }
}

interface Leg {
  conn: ChannelUdp
  session: Session
  relayed: TransportAddress
  kind: Kind
  sent: number
}

/**
 * One allocation on a fresh UDP socket. A 437 (allocation mismatch) means the kernel gave the
 * socket a port whose former allocation coturn still holds (a release lost under load): another
 * socket then.
 */
async function openLeg(
  host: string,
  port: number,
  creds: { username: string; password: string },
  kind: Kind,
  tries = 3,
): Promise<Leg> {
  try {
    return await openLegOnce(host, port, creds, kind)
  } catch (err) {
    if (tries > 1 && (err as { code?: number }).code === 437) return openLeg(host, port, creds, kind, tries - 1)
    throw err
  }
}

async function openLegOnce(host: string, port: number, creds: { username: string; password: string }, kind: Kind) {
  const socket = createSocket('udp4')
  await new Promise<void>((ok, fail) => {
    socket.once('error', fail)
    socket.connect(port, host, () => {
      socket.off('error', fail)
      ok()
    })
  })
  // Room for a tick's burst: what the generator's own socket drops would count as loss.
  socket.setRecvBufferSize(1 << 20)
  socket.setSendBufferSize(1 << 20)
  const conn = new ChannelUdp(socket)
  const session = new Session(conn, AbortSignal.timeout(600_000), creds)
  const { relayed } = await session.allocate({ keep: true })
  return { conn, session, relayed, kind, sent: 0 } satisfies Leg
}

/** Runs `fn` on every item, at most `n` at once. */
async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!)
      }
    }),
  )
  return out
}

interface Target {
  host: string
  port: number
  secret: string
  /** coturn's CPU seconds so far and its RSS, or undefined where they cannot be read. */
  proc(): Promise<{ cpuSeconds: number; rssMb: number; at: number } | undefined>
  /** coturn's log lines of the last `seconds` about quotas, bandwidth or errors. */
  complaints(seconds: number): Promise<string>
  /** The host's UDP counters (/proc/net/snmp): datagrams dropped for a full receive or send buffer. */
  udpDrops(): Promise<{ rcvbuf: number; sndbuf: number } | undefined>
  describe(): Promise<string>
  stop(): Promise<void>
}

/** A deployed test host (the default), or with BENCH_TURN_LOOPBACK=1 a coturn on loopback (a dry run). */
async function target(): Promise<Target> {
  if (process.env.BENCH_TURN_LOOPBACK === '1') {
    const c = await startCoturn()
    return {
      host: c.host,
      port: c.port,
      secret: c.secret,
      proc: async () => undefined,
      udpDrops: async () => undefined,
      complaints: async () =>
        String(
          c
            .log()
            .split('\n')
            .filter((l) => /quota|bandwidth|error/i.test(l)).length,
        ),
      describe: async () => `a loopback coturn (dry run, ${c.host}:${c.port})`,
      stop: () => c.stop(),
    }
  }
  const suite = (process.env.BENCH_SUITE ?? 'trixie') as DebianSuite
  const d = await startDeployedHost({ name: 'th-call-bench', index: 124, suite, deployArgs: ['--no-doctor'] })
  const toml = parse(readFileSync(join(d.dir, 'chatmail.toml'), 'utf8')) as { turn: { secret: string } }
  return {
    host: d.host.host,
    port: 3478,
    secret: toml.turn.secret,
    proc: async () => {
      const out = await guestShell(
        d.host,
        'p=$(pidof turnserver); echo $(getconf CLK_TCK) $(cut -d" " -f14,15 /proc/$p/stat) $(awk "/VmRSS/{print \\$2}" /proc/$p/status)',
      )
      const [tck, u, s, rss] = out.trim().split(/\s+/).map(Number) as [number, number, number, number]
      return { cpuSeconds: (u + s) / tck, rssMb: rss / 1024, at: performance.now() }
    },
    udpDrops: async () => udpDrops(await guestShell(d.host, 'cat /proc/net/snmp')),
    complaints: async (seconds) =>
      (
        await guestShell(
          d.host,
          `journalctl -u coturn --no-pager -o cat --since '-${seconds}s' | grep -ciE 'quota|bandwidth|error' || true`,
        )
      ).trim(),
    describe: async () =>
      `a deployed Debian ${suite} test host (${d.host.host}, ${(await guestShell(d.host, 'nproc')).trim()} cores seen by the host)`,
    stop: () => d.stop(),
  }
}

/** RcvbufErrors and SndbufErrors of the Udp: lines of /proc/net/snmp. */
function udpDrops(snmp: string): { rcvbuf: number; sndbuf: number } {
  const [head, values] = snmp.split('\n').filter((l) => l.startsWith('Udp: ')) as [string, string]
  const names = head.split(/\s+/)
  const v = values.split(/\s+/)
  const of = (n: string) => Number(v[names.indexOf(n)])
  return { rcvbuf: of('RcvbufErrors'), sndbuf: of('SndbufErrors') }
}
const runnerDrops = () => udpDrops(readFileSync('/proc/net/snmp', 'utf8'))

const t = await target()
try {
  const { host, port, secret } = t
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
  console.log(`TURN calls through ${await t.describe()}, load ${load} at start, ${SECONDS} s a phase`)
  const idle = await t.proc()
  if (idle) console.log(`coturn idle: RSS ${idle.rssMb.toFixed(1)} MB`)
  for (const phase of PHASES) {
    const name = phase.map((p) => `${p.sessions} ${p.kind}`).join(' + ')
    const kinds = phase.flatMap((p) => Array.from({ length: p.sessions / 2 }, () => p.kind))
    // One username per call (coturn's user-quota counts allocations per username).
    const t0 = performance.now()
    const calls = await pool(kinds, 32, async (kind) => {
      const creds = mintTurnCredential(secret, { ttlSeconds: 3600, nowMs: Date.now(), user: `bench${Math.random()}` })
      const a = await openLeg(host, port, creds, kind)
      const b = await openLeg(host, port, creds, kind)
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        await x.session.request(
          Method.ChannelBind,
          (id) => [
            { type: Attr.CHANNEL_NUMBER, value: Buffer.from([CHANNEL >> 8, CHANNEL & 0xff, 0, 0]) },
            attr.xorAddress(Attr.XOR_PEER_ADDRESS, y.relayed, id),
          ],
          'ChannelBind',
        )
      }
      return [a, b] as const
    })
    const legs = calls.flat()
    console.log(`${name}: ${legs.length} allocations and channels in ${Math.round(performance.now() - t0)} ms`)
    // Send at each leg's rate for SECONDS, on a 20 ms tick (credit-based, so late ticks catch up).
    const before = await t.proc()
    const [hostDrops0, runnerDrops0] = [await t.udpDrops(), runnerDrops()]
    const gen0 = process.cpuUsage()
    const start = performance.now()
    let last = start
    const credit = new Map<Leg, number>(legs.map((l) => [l, 0]))
    const frames = new Map<Kind, Buffer>()
    for (const k of Object.keys(RATES) as Kind[]) {
      const f = Buffer.alloc(4 + RATES[k].bytes)
      f.writeUInt16BE(CHANNEL, 0)
      f.writeUInt16BE(RATES[k].bytes, 2)
      frames.set(k, f)
    }
    // A late tick (the generator starved of CPU) does not burst: at most 100 ms of packets, the
    // rest are not sent (and not counted as sent): `behind` below says how many.
    let worstTick = 0
    let owed = 0
    while (performance.now() - start < SECONDS * 1000) {
      const now = performance.now()
      const late = (now - last) / 1000
      const dt = Math.min(late, 0.1)
      worstTick = Math.max(worstTick, now - last)
      for (const l of legs) owed += (late - dt) * RATES[l.kind].perSecond
      last = now
      for (const l of legs) {
        let c = credit.get(l)! + dt * RATES[l.kind].perSecond
        const f = frames.get(l.kind)!
        while (c >= 1) {
          f.writeUInt32BE(l.sent++, 4)
          l.conn.send(Buffer.from(f))
          c -= 1
        }
        credit.set(l, c)
      }
      await sleep(20)
    }
    const sendSeconds = (performance.now() - start) / 1000
    const after = await t.proc()
    const gen = process.cpuUsage(gen0)
    await sleep(1500) // what is in flight arrives
    for (const k of new Set(kinds)) {
      const ofKind = calls.filter(([a]) => a.kind === k)
      let sent = 0
      let received = 0
      for (const [a, b] of ofKind) {
        sent += a.sent + b.sent
        received += a.conn.received + b.conn.received
      }
      const loss = sent ? (1 - received / sent) * 100 : 0
      console.log(
        `  ${k}: ${ofKind.length * 2} sessions (${ofKind.length} calls), ${sent} packets sent, ${received} received: loss ${loss.toFixed(3)} % (goal < 0.5 %); ${((sent * RATES[k].bytes * 8) / sendSeconds / 1e6).toFixed(1)} Mbit/s into coturn`,
      )
    }
    const gcpu = (((gen.user + gen.system) / 1e6 / sendSeconds) * 100).toFixed(0)
    const server =
      before && after && idle
        ? (() => {
            const cpu = ((after.cpuSeconds - before.cpuSeconds) / ((after.at - before.at) / 1000)) * 100
            const kb = ((after.rssMb - idle.rssMb) * 1024) / legs.length
            return `coturn: CPU ${cpu.toFixed(0)} % of one core (${(cpu / legs.length).toFixed(3)} % a session), RSS ${after.rssMb.toFixed(1)} MB (${kb.toFixed(1)} KB a session over idle)`
          })()
        : 'coturn: CPU and memory not measured'
    console.log(
      `  ${server}; the generator: CPU ${gcpu} % of one core, its 20 ms tick late by up to ${Math.round(worstTick - 20)} ms, ${Math.round(owed)} packets not sent for it; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
    )
    await pool(legs, 32, async (l) => {
      await l.session.release().catch(() => false)
      l.conn.close()
    })
    const [hostDrops1, runnerDrops1] = [await t.udpDrops(), runnerDrops()]
    const delta = (a?: { rcvbuf: number; sndbuf: number }, b?: { rcvbuf: number; sndbuf: number }) =>
      a && b ? `${b.rcvbuf - a.rcvbuf} for a full receive buffer, ${b.sndbuf - a.sndbuf} for a full send buffer` : 'n/a'
    console.log(
      `  UDP datagrams dropped by the kernel: on the host (coturn) ${delta(hostDrops0, hostDrops1)}; on the runner (the generator) ${delta(runnerDrops0, runnerDrops1)}`,
    )
    const refused = await t.complaints(Math.ceil(SECONDS + 60))
    console.log(`  coturn's journal: ${refused} lines about quotas, bandwidth or errors in the phase`)
  }
} finally {
  await t.stop()
}
