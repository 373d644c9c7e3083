/**
 * chatmail-metadata over its unix socket: lookups per second, p99 latency, and the service's RSS
 * before and after 100k lookups. The service is the built file in its own process (one core);
 * the load generator runs here.
 *   node --import tsx bench/metadata.ts [LOOKUPS]
 * Target: >= 20k lookups/s, p99 < 1 ms, flat memory.
 */
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { type MetadataService, startMetadataService } from '../test/helpers/dovecot.js'

const TURN_LOOKUP =
  'Lshared/0123456789abcdef0123456789abcdef/vendor/vendor.dovecot/pvt/server/vendor/deltachat/turn\talice@example.org\n'
const HELLO = 'H3\t2\t0\t\tmetadata\n'

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : Number.NaN
}

/** The service's CPU time (user + system), in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

interface Run {
  perSecond: number
  p50: number
  p99: number
}

function summarize(latenciesNs: number[], elapsedNs: number): Run {
  const ms = latenciesNs.map((n) => n / 1e6).sort((a, b) => a - b)
  return { perSecond: (latenciesNs.length / elapsedNs) * 1e9, p50: percentile(ms, 50), p99: percentile(ms, 99) }
}

/** One lookup on a persistent connection: resolves at the reply's newline. */
function lookupOn(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    const onData = (d: Buffer): void => {
      if (d.includes(10)) {
        s.off('data', onData)
        resolve()
      }
    }
    s.on('data', onData)
    s.write(TURN_LOOKUP)
  })
}

/** `conns` persistent connections, each asking one lookup at a time. */
async function persistent(socket: string, total: number, conns: number): Promise<Run> {
  const sockets = await Promise.all(
    Array.from({ length: conns }, () => {
      return new Promise<Socket>((resolve) => {
        const s = connect(socket, () => {
          s.write(HELLO)
          resolve(s)
        })
      })
    }),
  )
  const latencies: number[] = []
  const start = process.hrtime.bigint()
  await Promise.all(
    sockets.map(async (s) => {
      while (latencies.length < total) {
        const t0 = process.hrtime.bigint()
        await lookupOn(s)
        latencies.push(Number(process.hrtime.bigint() - t0))
      }
    }),
  )
  const elapsed = Number(process.hrtime.bigint() - start)
  for (const s of sockets) s.destroy()
  return summarize(latencies, elapsed)
}

/** Dovecot's pattern: a new connection, hello and one lookup, then close. */
function oneShot(socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(socket, () => s.write(HELLO + TURN_LOOKUP))
    s.on('data', (d) => {
      if (d.includes(10)) {
        s.destroy()
        resolve()
      }
    })
    s.on('error', reject)
  })
}

async function perConnection(socket: string, total: number, concurrency: number): Promise<Run> {
  const latencies: number[] = []
  let started = 0
  const start = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++
        const t0 = process.hrtime.bigint()
        await oneShot(socket)
        latencies.push(Number(process.hrtime.bigint() - t0))
      }
    }),
  )
  return summarize(latencies, Number(process.hrtime.bigint() - start))
}

async function measure(name: string, pid: number, run: () => Promise<Run>): Promise<void> {
  const cpu0 = cpuSeconds(pid)
  const t0 = Date.now()
  const r = await run()
  const busy = (100 * (cpuSeconds(pid) - cpu0)) / ((Date.now() - t0) / 1000)
  const rate = Math.round(r.perSecond).toString().padStart(7)
  console.log(
    `${name.padEnd(36)} ${rate} lookups/s   p50 ${r.p50.toFixed(3)} ms   p99 ${r.p99.toFixed(3)} ms   service CPU ${busy.toFixed(0)}%`,
  )
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 100_000)
  const svc: MetadataService = await startMetadataService({ irohRelayUrl: 'https://relay.example.org' })
  try {
    await persistent(svc.socket, 5_000, 4) // warm-up
    const rssBefore = rssKiB(svc.pid)
    console.log(`chatmail-metadata bench: ${total} lookups per run, service pid ${svc.pid}, node ${process.version}`)
    await measure('persistent, 1 connection', svc.pid, () => persistent(svc.socket, total, 1))
    await measure('persistent, 16 connections', svc.pid, () => persistent(svc.socket, total, 16))
    const rssMid = rssKiB(svc.pid)
    await measure('connection per lookup, 1 at a time', svc.pid, () => perConnection(svc.socket, total / 5, 1))
    await measure('connection per lookup, 32 at once', svc.pid, () => perConnection(svc.socket, total, 32))
    const rssAfter = rssKiB(svc.pid)
    await measure('connection per lookup, 32 at once', svc.pid, () => perConnection(svc.socket, total, 32))
    const rssEnd = rssKiB(svc.pid)
    console.log(
      `service RSS: ${rssBefore} KiB after warm-up; ${rssMid} KiB after 200k lookups on persistent connections; ` +
        `${rssAfter} KiB after 120k more, one connection each; ${rssEnd} KiB after another 100k`,
    )
    console.log('target: >= 20000 lookups/s on one core, p99 < 1 ms, flat memory')
  } finally {
    await svc.stop()
  }
}

await main()
