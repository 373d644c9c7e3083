/**
 * What stops account creation besides the rules: a per-client-address rate limit, and a host short
 * of disk or memory. Pure but for `hostResources` (statfs and /proc/meminfo).
 */
import { readFileSync, statfsSync } from 'node:fs'

/** At most `max` creations per client address in any `windowMs` (a sliding log per address). */
export class RateLimiter {
  /**
   * Per client, the times of its creations in order, from `head` on (those before it have left
   * the window). Each take drops what left the window from the front in O(1) a creation, and the
   * array is compacted once more than half of it is gone: a client with a limit of thousands (an
   * event behind one NAT address) no longer costs a copy of all its times per creation.
   */
  private readonly hits = new Map<string, { times: number[]; head: number }>()

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
    const cutoff = nowMs - this.windowMs
    const entry = this.hits.get(client) ?? { times: [], head: 0 }
    const { times } = entry
    while (entry.head < times.length && (times[entry.head] as number) <= cutoff) entry.head++
    if (entry.head > 64 && entry.head * 2 > times.length) {
      entry.times = times.slice(entry.head)
      entry.head = 0
    }
    if (entry.times.length - entry.head >= this.max) {
      this.hits.set(client, entry)
      return false
    }
    entry.times.push(nowMs)
    this.hits.delete(client)
    this.hits.set(client, entry)
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
