/**
 * chatmail-metadata over its unix socket: throughput, latency and memory of the built service.
 *   node --import tsx bench/metadata.ts [LOOKUPS]      (or: npx tsx bench/metadata.ts)
 * By default it builds and starts the service (test/helpers/dovecot.ts). To measure one you started
 * yourself (another build, or under `node --cpu-prof`), set BENCH_SOCKET=<its socket> BENCH_PID=<its pid>.
 * BENCH_THREADS (default 2) sets the number of load generator threads.
 * Target (issue): >= 20k lookups/s on one core, p99 < 1 ms, flat memory.
 *
 * How to read it, on a small machine where this load generator shares the cores with the service:
 * - "per svc-CPU-s" is lookups per second of the SERVICE process's own CPU time (utime+stime from
 *   /proc/<pid>/schedstat, ns), i.e. what one core fully given to the service would do. That is
 *   the number the "20k lookups/s on one core" target refers to; wall-clock lookups/s is printed
 *   too, but it is bounded by the generator whenever the service is not at ~100% CPU.
 * - p99 is the client-measured time from connect to the reply's newline. At concurrency 1 and 4 it
 *   is the service's latency (the "p99 < 1 ms" target); at concurrency 32 it is mostly queueing:
 *   a closed loop of 32 clients waits 32 / throughput on average (1.6 ms at 20k/s) whatever the
 *   service does, so it is printed as a saturation figure, not compared with the target.
 * - The generator runs in worker threads (one event loop each, one prebuilt request buffer, no
 *   per-lookup promises), so that it costs the service as little CPU as it can.
 */
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { type MetadataService, startMetadataService } from '../test/helpers/dovecot.js'
import { cpuSeconds as procCpuSeconds } from '../test/helpers/proc.js'

const TURN_LOOKUP =
  'Lshared/0123456789abcdef0123456789abcdef/vendor/vendor.dovecot/pvt/server/vendor/deltachat/turn\talice@example.org\n'
const HELLO = 'H3\t2\t0\t\tmetadata\n'

/**
 * One generator thread: `concurrency` closed-loop clients, `count` lookups in all. Plain CommonJS
 * run with `eval: true`, so the worker needs no TypeScript loader. Latencies (ns) come back in a
 * transferred Float64Array.
 *   mode 'conn':  dovecot's pattern, a new connection per lookup (hello + lookup, close at the reply)
 *   mode 'keep':  one persistent connection per client (hello once, then lookup after lookup)
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { connect } = require('node:net')
const { socket, mode, count, concurrency, hello, lookup } = workerData
const ONE_SHOT = Buffer.from(hello + lookup)
const LOOKUP = Buffer.from(lookup)
const HELLO = Buffer.from(hello)
const lat = new Float64Array(count)
const t0s = new Float64Array(concurrency)
const now = () => Number(process.hrtime.bigint())
let started = 0
let done = 0
let active = concurrency
let startNs = 0

function finish() {
  const elapsedNs = now() - startNs
  parentPort.postMessage({ lat, elapsedNs }, [lat.buffer])
}

function retire() {
  if (--active === 0) finish()
}

// mode 'conn': one socket per lookup. Shared listeners, the client's slot on the socket.
function onConnData(chunk) {
  if (chunk.indexOf(10) < 0) return
  lat[done++] = now() - t0s[this.slot]
  this.destroy()
  nextConn(this.slot)
}
function onError(err) {
  console.error('bench client: ' + err.message)
  process.exit(1)
}
function nextConn(slot) {
  if (started >= count) return retire()
  started++
  t0s[slot] = now()
  const s = connect(socket)
  s.slot = slot
  s.on('data', onConnData)
  s.on('error', onError)
  s.write(ONE_SHOT)
}

// mode 'keep': one socket per client for the whole run.
function onKeepData(chunk) {
  if (chunk.indexOf(10) < 0) return
  lat[done++] = now() - t0s[this.slot]
  if (started >= count) {
    this.destroy()
    return retire()
  }
  started++
  t0s[this.slot] = now()
  this.write(LOOKUP)
}

parentPort.once('message', () => {
  startNs = now()
  for (let slot = 0; slot < concurrency; slot++) {
    if (mode === 'conn') {
      nextConn(slot)
      continue
    }
    const s = connect(socket)
    s.slot = slot
    s.on('data', onKeepData)
    s.on('error', onError)
    if (started >= count) {
      s.destroy()
      retire()
      continue
    }
    started++
    t0s[slot] = now()
    s.write(HELLO)
    s.write(LOOKUP)
  }
})
parentPort.postMessage('ready')
`

interface Run {
  lookups: number
  wallS: number
  serviceCpuS: number
  generatorCpuS: number
  p50: number
  p99: number
  p999: number
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : Number.NaN
}

/** The service's CPU time in seconds: schedstat's on-CPU ns, else stat's utime+stime in clock ticks. */
function cpuSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9
  } catch {
    return procCpuSeconds(pid)
  }
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

function spawnGenerator(data: Record<string, unknown>): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: data })
    w.once('message', () => resolve(w))
    w.once('error', reject)
  })
}

/** `concurrency` clients spread over `threads` generator threads, `total` lookups in all. */
async function run(
  svc: Service,
  mode: 'conn' | 'keep',
  total: number,
  concurrency: number,
  threads: number,
): Promise<Run> {
  const n = Math.min(threads, concurrency)
  const workers = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const share = (k: number): number => Math.floor(k / n) + (i < k % n ? 1 : 0)
      return spawnGenerator({
        socket: svc.socket,
        mode,
        count: share(total),
        concurrency: share(concurrency),
        hello: HELLO,
        lookup: TURN_LOOKUP,
      })
    }),
  )
  const results = workers.map(
    (w) =>
      new Promise<{ lat: Float64Array; elapsedNs: number }>((resolve, reject) => {
        w.once('message', resolve)
        w.once('error', reject)
      }),
  )
  const cpu0 = cpuSeconds(svc.pid)
  const gen0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (const w of workers) w.postMessage('go')
  const done = await Promise.all(results)
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9
  const serviceCpuS = cpuSeconds(svc.pid) - cpu0
  const gen = process.cpuUsage(gen0)
  await Promise.all(workers.map((w) => w.terminate()))
  const all = new Float64Array(done.reduce((k, d) => k + d.lat.length, 0))
  let at = 0
  for (const d of done) {
    all.set(d.lat, at)
    at += d.lat.length
  }
  all.sort()
  return {
    lookups: all.length,
    wallS,
    serviceCpuS,
    generatorCpuS: (gen.user + gen.system) / 1e6,
    p50: percentile(all, 50) / 1e6,
    p99: percentile(all, 99) / 1e6,
    p999: percentile(all, 99.9) / 1e6,
  }
}

function report(name: string, r: Run): void {
  const perWall = Math.round(r.lookups / r.wallS)
  const perCpu = Math.round(r.lookups / r.serviceCpuS)
  const busy = (100 * r.serviceCpuS) / r.wallS
  const gen = (100 * r.generatorCpuS) / r.wallS
  console.log(
    `${name.padEnd(30)} ${String(perWall).padStart(6)}/s wall  ${String(perCpu).padStart(6)}/svc-CPU-s  ` +
      `p50 ${r.p50.toFixed(3)}  p99 ${r.p99.toFixed(3)}  p99.9 ${r.p999.toFixed(3)} ms  ` +
      `svc CPU ${busy.toFixed(0).padStart(3)}%  gen CPU ${gen.toFixed(0).padStart(3)}%`,
  )
}

type Service = Pick<MetadataService, 'socket' | 'pid' | 'stop'>

/** The service under test: the one in BENCH_SOCKET/BENCH_PID, or a fresh build started here. */
async function service(): Promise<Service> {
  const { BENCH_SOCKET: socket, BENCH_PID: pid } = process.env
  if (socket && pid) return { socket, pid: Number(pid), stop: async () => {} }
  return startMetadataService({ irohRelayUrl: 'https://relay.example.org' })
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 100_000)
  const threads = Number(process.env.BENCH_THREADS ?? 2)
  const svc = await service()
  try {
    await run(svc, 'keep', 5_000, 4, 1) // warm-up, both paths
    await run(svc, 'conn', 5_000, 4, 1)
    const rss0 = rssKiB(svc.pid)
    console.log(
      `chatmail-metadata bench: ${total} lookups per run, service pid ${svc.pid}, node ${process.version}, ` +
        `${threads} generator threads`,
    )
    report('persistent, c=1', await run(svc, 'keep', total, 1, 1))
    report('persistent, c=16', await run(svc, 'keep', total, 16, threads))
    const rss1 = rssKiB(svc.pid)
    report('conn per lookup, c=1', await run(svc, 'conn', total / 5, 1, 1))
    report('conn per lookup, c=4', await run(svc, 'conn', total / 2, 4, threads))
    report('conn per lookup, c=32', await run(svc, 'conn', total, 32, threads))
    const rss2 = rssKiB(svc.pid)
    const more: number[] = []
    for (let i = 0; i < 2; i++) {
      report('conn per lookup, c=32', await run(svc, 'conn', total, 32, threads))
      more.push(rssKiB(svc.pid))
    }
    console.log(
      `service RSS: ${rss0} KiB after warm-up; ${rss1} KiB after ${2 * total} persistent lookups; ` +
        `${rss2} KiB after ${total / 5 + total / 2 + total} more, a connection each; ` +
        `then ${more.join(', ')} KiB after each further ${total}`,
    )
    console.log('target: >= 20000 per svc-CPU-s (one core), p99 < 1 ms at c=1 and c=4 (c=32 p99 is queueing), flat RSS')
  } finally {
    await svc.stop()
  }
}

await main()
