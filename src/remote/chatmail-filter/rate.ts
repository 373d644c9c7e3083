/**
 * Per-user send rate: a token bucket per login holding at most `burst` messages, refilled at
 * `perMinute` a minute. Pure (the caller passes the time); idle buckets are dropped.
 */
export class SendRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  private lastSweep = 0

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
  ) {}

  /** Take one message for `user` at `now` (ms): 0 when allowed, else the seconds until it would be. */
  take(user: string, now: number): number {
    const perMs = this.perMinute / 60_000
    const b = this.buckets.get(user)
    const tokens = b ? Math.min(this.burst, b.tokens + (now - b.at) * perMs) : this.burst
    if (now - this.lastSweep > 60_000) this.sweep(now)
    if (tokens < 1) {
      this.buckets.set(user, { tokens, at: now })
      return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000))
    }
    this.buckets.set(user, { tokens: tokens - 1, at: now })
    return 0
  }

  get size(): number {
    return this.buckets.size
  }

  private sweep(now: number): void {
    this.lastSweep = now
    const full = this.burst / (this.perMinute / 60_000)
    for (const [k, b] of this.buckets) if (now - b.at >= full) this.buckets.delete(k)
  }
}
