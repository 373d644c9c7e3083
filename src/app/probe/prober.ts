/**
 * The prober's work: one doctor run per probe of a listed target, never two of one target at once
 * (a probe asked while one runs shares its result), at most `maxConcurrent` runs over all targets
 * (the others wait in line; the line holds at most one per target), and a result younger than
 * `minIntervalMs` is answered again instead of running anew. So no scraper, however many or fast,
 * makes the prober check a server more often than once per interval. It counts what it did for
 * its own /metrics.
 */
import { runDoctor } from '../../doctor/index.js'
import type { DoctorReport } from '../../doctor/model.js'
import { doctorFamilies } from '../../doctor/report/prometheus.js'
import { type MetricFamily, renderOpenMetrics } from '../../protocols/exposition.js'
import type { ProbeTarget } from './targets.js'

export interface ProberLimits {
  /** Doctor runs at once, over all targets. */
  maxConcurrent: number
  /** A result this young is answered again without a new run. */
  minIntervalMs: number
}

interface Finished {
  report: DoctorReport
  endedMs: number
}

/** A counter keyed by a small, fixed set of label values. */
class Counts {
  readonly values = new Map<string, { labels: Record<string, string>; value: number }>()
  add(labels: Record<string, string>, by = 1): void {
    const key = JSON.stringify(labels)
    const entry = this.values.get(key) ?? { labels, value: 0 }
    entry.value += by
    this.values.set(key, entry)
  }
  samples() {
    return [...this.values.values()].map(({ labels, value }) => ({ labels, value }))
  }
}

export class Prober {
  private readonly byName: Map<string, ProbeTarget>
  private readonly running = new Map<string, Promise<Finished>>()
  private readonly last = new Map<string, Finished>()
  private readonly queue: Array<() => void> = []
  private active = 0
  readonly runs = new Counts()
  readonly reused = new Counts()
  readonly requests = new Counts()
  private readonly startedMs = Date.now()

  constructor(
    targets: readonly ProbeTarget[],
    private readonly limits: ProberLimits,
    private readonly run: (t: ProbeTarget) => Promise<DoctorReport> = (t) =>
      runDoctor(t.options, { only: t.only, skip: t.skip }),
  ) {
    this.byName = new Map(targets.map((t) => [t.name, t]))
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  /** The OpenMetrics answer of /probe?target=NAME; the target must be listed (has()). */
  async probe(name: string): Promise<string> {
    const target = this.byName.get(name)
    if (!target) throw new Error(`${name} is not a target`)
    const fresh = this.last.get(name)
    let result: Finished
    if (fresh && Date.now() - fresh.endedMs < this.limits.minIntervalMs) {
      this.reused.add({ target: name, why: 'recent' })
      result = fresh
    } else if (this.running.has(name)) {
      this.reused.add({ target: name, why: 'running' })
      result = await (this.running.get(name) as Promise<Finished>)
    } else {
      const pending = this.start(target)
      this.running.set(name, pending)
      try {
        result = await pending
      } finally {
        this.running.delete(name)
      }
    }
    return renderOpenMetrics(doctorFamilies(result.report, name, result.endedMs))
  }

  private async start(target: ProbeTarget): Promise<Finished> {
    await this.slot()
    try {
      const report = await this.run(target)
      const finished = { report, endedMs: Date.now() }
      this.last.set(target.name, finished)
      this.runs.add({ target: target.name, status: report.status })
      return finished
    } catch (err) {
      this.runs.add({ target: target.name, status: 'error' })
      throw err
    } finally {
      this.active--
      this.queue.shift()?.()
    }
  }

  /** Waits for one of the maxConcurrent places. */
  private slot(): Promise<void> {
    if (this.active < this.limits.maxConcurrent) {
      this.active++
      return Promise.resolve()
    }
    return new Promise((granted) =>
      this.queue.push(() => {
        this.active++
        granted()
      }),
    )
  }

  /** The prober's own metrics (/metrics). */
  metrics(): string {
    const mem = process.memoryUsage()
    const cpu = process.cpuUsage()
    const families: MetricFamily[] = [
      {
        name: 'chatmail_probe_targets',
        type: 'gauge',
        help: 'Targets in the targets file.',
        samples: [{ value: this.byName.size }],
      },
      {
        name: 'chatmail_probe_running',
        type: 'gauge',
        help: 'Doctor runs in progress.',
        samples: [{ value: this.active }],
      },
      {
        name: 'chatmail_probe_waiting',
        type: 'gauge',
        help: 'Doctor runs waiting for a free place (at most one per target).',
        samples: [{ value: this.queue.length }],
      },
      {
        name: 'chatmail_probe_runs',
        type: 'counter',
        help: 'Doctor runs by target and overall verdict (error: the run itself broke).',
        samples: this.runs.samples(),
      },
      {
        name: 'chatmail_probe_reused',
        type: 'counter',
        help: 'Probes answered with a result already there: recent (younger than the minimum interval) or running (shared with a probe in progress).',
        samples: this.reused.samples(),
      },
      {
        name: 'chatmail_probe_requests',
        type: 'counter',
        help: 'HTTP requests by path and status code.',
        samples: this.requests.samples(),
      },
      {
        name: 'process_start_time_seconds',
        type: 'gauge',
        unit: 'seconds',
        help: 'When the prober started (Unix time).',
        samples: [{ value: this.startedMs / 1000 }],
      },
      {
        name: 'process_resident_memory_bytes',
        type: 'gauge',
        unit: 'bytes',
        help: 'Resident memory of the prober.',
        samples: [{ value: mem.rss }],
      },
      {
        name: 'process_cpu_seconds',
        type: 'counter',
        unit: 'seconds',
        help: 'CPU time the prober used (user and system).',
        samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
      },
    ]
    return renderOpenMetrics(families)
  }
}
