/**
 * One time budget for a network exchange: a timer plus the caller's signal. Every wait races
 * against it, and the sockets it tracks are destroyed when it runs out, is aborted or is disposed.
 * The TURN client and the relay probes share it; each says which error a timeout becomes.
 */
import { raceAbort } from './abort.js'

export interface DeadlineOptions {
  timeoutMs: number
  /** The caller's signal: aborting it ends the exchange as a timeout does. */
  signal?: AbortSignal | undefined
  /** The error a timeout aborts with; `stage` says what was awaited. */
  timeoutError(stage: string): Error
  /** The error an abort of the caller's signal becomes. */
  abortError(stage: string): Error
}

interface Destroyable {
  destroy(): unknown
}

export class Deadline {
  /** What the exchange is waiting for now; named in the timeout's error. */
  stage = 'connecting'
  private readonly controller = new AbortController()
  private readonly timer: NodeJS.Timeout
  private readonly started = Date.now()
  private readonly sockets = new Set<Destroyable>()
  private readonly onOuterAbort = () => this.abort(this.o.abortError(this.stage))

  constructor(private readonly o: DeadlineOptions) {
    this.timer = setTimeout(() => this.abort(o.timeoutError(this.stage)), o.timeoutMs)
    if (o.signal?.aborted) this.onOuterAbort()
    else o.signal?.addEventListener('abort', this.onOuterAbort, { once: true })
  }

  /** Aborted when the time is up or the caller aborts; pass it on to every socket and wait. */
  get signal(): AbortSignal {
    return this.controller.signal
  }

  private abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason)
    for (const s of this.sockets) s.destroy()
  }

  /** `p`, or the deadline's error as soon as it passes. */
  race<T>(p: Promise<T>): Promise<T> {
    return raceAbort(p, this.controller.signal)
  }

  /** Destroys the socket when the deadline passes or is disposed. */
  track(socket: Destroyable): void {
    if (this.controller.signal.aborted) socket.destroy()
    this.sockets.add(socket)
  }

  /** Hands a tracked socket over to the caller: it survives `dispose()`. */
  release(socket: Destroyable): void {
    this.sockets.delete(socket)
  }

  /** Milliseconds left (at least 0). */
  remaining(): number {
    return Math.max(0, this.o.timeoutMs - (Date.now() - this.started))
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.o.signal?.removeEventListener('abort', this.onOuterAbort)
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }
}
