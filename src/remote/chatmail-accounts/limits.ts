/**
 * What stops account creation besides the rules: a per-client-address rate limit, and a host short
 * of disk or memory. Pure but for `hostResources` (statfs and /proc/meminfo).
 */
import { readFileSync, statfsSync } from 'node:fs'
import { isIPv4, isIPv6 } from 'node:net'

/** The eight 16-bit groups of an IPv6 address (valid input), with an embedded IPv4 tail converted. */
function ipv6Groups(ip: string): number[] {
  let text = ip.toLowerCase().replace(/%.*$/, '')
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0')
  return [...h, ...zeros, ...t].map((g) => Number.parseInt(g, 16))
}

/**
 * What the creation limit counts as one client: an IPv4 address, or the /64 of an IPv6 address.
 * Every IPv6 client owns at least a /64 (RFC 6177, and what providers hand out): counted one address
 * at a time, one client would have 2^64 of them. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
 * what a dual-stack socket reports) is its IPv4 address.
 */
export function clientKey(client: string): string {
  if (isIPv4(client) || !isIPv6(client)) return client
  const g = ipv6Groups(client)
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return [g[6] as number, g[7] as number].flatMap((x) => [x >> 8, x & 0xff]).join('.')
  }
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`
}

/** At most `max` creations per client address in any `windowMs` (a sliding log per address). */
export class RateLimiter {
  /**
   * Per client, the times of its creations in order, from `head` on (those before it have left
   * the window). Each take drops what left the window from the front in O(1) a creation, and the
   * array is compacted once more than half of it is gone: a client with a limit of thousands (an
   * event behind one NAT address) no longer costs a copy of all its times per creation.
   */
  private readonly hits = new Map<string, { times: number[]; head: number }>()

  /** How many clients are tracked now (at most `maxClients`). */
  get size(): number {
    return this.hits.size
  }

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    /** Addresses tracked at once; beyond it the oldest are forgotten (bounded memory). */
    private readonly maxClients = 100_000,
  ) {}

  /**
   * Records a creation for `client` when allowed; false when it is over its limit. When the clock
   * goes back, a time recorded before stays counted until those before it have left the window:
   * the limit errs on the strict side.
   */
  take(client: string, nowMs: number): boolean {
    if (this.max === 0) return false
    const key = clientKey(client)
    const cutoff = nowMs - this.windowMs
    const entry = this.hits.get(key) ?? { times: [], head: 0 }
    const { times } = entry
    while (entry.head < times.length && (times[entry.head] as number) <= cutoff) entry.head++
    if (entry.head > 64 && entry.head * 2 > times.length) {
      entry.times = times.slice(entry.head)
      entry.head = 0
    }
    if (entry.times.length - entry.head >= this.max) {
      this.hits.set(key, entry)
      return false
    }
    entry.times.push(nowMs)
    this.hits.delete(key)
    this.hits.set(key, entry)
    if (this.hits.size > this.maxClients) this.hits.delete(this.hits.keys().next().value as string)
    return true
  }
}

export interface Resources {
  freeDiskBytes: number
  availableMemoryBytes: number
}

export function memAvailable(meminfo: string): number | undefined {
  const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(meminfo)
  return m ? Number(m[1]) * 1024 : undefined
}

export function hostResources(diskPath: string): Resources {
  const fs = statfsSync(diskPath)
  let mem: number | undefined
  try {
    mem = memAvailable(readFileSync('/proc/meminfo', 'utf8'))
  } catch {
    mem = undefined
  }
  return { freeDiskBytes: fs.bavail * fs.bsize, availableMemoryBytes: mem ?? Number.MAX_SAFE_INTEGER }
}

/**
 * `read` again only when its last result is older than `maxAgeMs`: a burst of creations reads
 * the disk and memory figures once a second instead of once each (statfs and /proc/meminfo cost
 * about as much as the rest of a creation but the hash), and a second is too short to fill either.
 */
export function cachedResources(read: () => Resources, maxAgeMs = 1000, now = Date.now): () => Resources {
  let last: { at: number; value: Resources } | undefined
  return () => {
    const t = now()
    if (last === undefined || t - last.at >= maxAgeMs || t < last.at) last = { at: t, value: read() }
    return last.value
  }
}

const MB = 1024 * 1024

/** Why the host cannot take a new account now, or undefined. */
export function resourceProblem(r: Resources, minDisk: number, minMemory: number): string | undefined {
  if (r.freeDiskBytes < minDisk) {
    return `the server is short of disk space (${Math.floor(r.freeDiskBytes / MB)} MB free, needs ${Math.floor(minDisk / MB)} MB): no new accounts for now`
  }
  if (r.availableMemoryBytes < minMemory) {
    return `the server is short of memory (${Math.floor(r.availableMemoryBytes / MB)} MB available, needs ${Math.floor(minMemory / MB)} MB): no new accounts for now`
  }
  return undefined
}
