/**
 * A task over every server of an inventory, in parallel with a bound: at most `concurrency` at a
 * time, each in its own try, so a server that fails or throws never stops the others. Commands
 * plug their task in (the doctor, a deploy, a status); the rows come back in inventory order.
 */
import { performance } from 'node:perf_hooks'
import { oneLine } from '../../lib/errors.js'
import type { InventoryEntry } from './inventory.js'

export type FleetStatus = 'ok' | 'warn' | 'fail' | 'error'

/** What a task says about one server. */
export interface FleetOutcome {
  status: FleetStatus
  /** One line: what happened, what failed. */
  summary: string
  /** Whatever the command shows in --json for this server. */
  data?: unknown
}

export interface FleetRow extends FleetOutcome {
  name: string
  path: string
  durationMs: number
}

export type FleetTask = (
  entry: InventoryEntry & { loaded: NonNullable<InventoryEntry['loaded']> },
) => Promise<FleetOutcome>

export async function runFleet(
  entries: readonly InventoryEntry[],
  concurrency: number,
  task: FleetTask,
  onRow?: (row: FleetRow) => void,
): Promise<FleetRow[]> {
  const rows: FleetRow[] = new Array(entries.length)
  let next = 0
  const one = async (entry: InventoryEntry): Promise<FleetRow> => {
    const started = performance.now()
    let outcome: FleetOutcome
    if (!entry.loaded) outcome = { status: 'error', summary: entry.error ?? 'the config did not load' }
    else {
      try {
        outcome = await task({ ...entry, loaded: entry.loaded })
      } catch (err) {
        outcome = { status: 'error', summary: oneLine((err as Error).message || String(err)) }
      }
    }
    return { name: entry.name, path: entry.path, durationMs: Math.round(performance.now() - started), ...outcome }
  }
  const worker = async () => {
    while (next < entries.length) {
      const i = next++
      const row = await one(entries[i] as InventoryEntry)
      rows[i] = row
      onRow?.(row)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, entries.length)) }, worker))
  return rows
}

/** Did every server go well (warnings allowed)? */
export const fleetOk = (rows: readonly FleetRow[]): boolean =>
  rows.every((r) => r.status === 'ok' || r.status === 'warn')

/** The summary table: one line per server, in inventory order, and a last line with the counts. */
export function fleetTable(rows: readonly FleetRow[]): string {
  const head = ['server', 'result', 'time', 'summary']
  const cells = rows.map((r) => [r.name, r.status, `${(r.durationMs / 1000).toFixed(1)} s`, r.summary])
  const width = (i: number) => Math.max(head[i]?.length ?? 0, ...cells.map((c) => c[i]?.length ?? 0))
  const line = (c: string[]) =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd(width(i))))
      .join('  ')
      .trimEnd()
  const bad = rows.filter((r) => r.status === 'fail' || r.status === 'error')
  const last = bad.length
    ? `${bad.length} of ${rows.length} server(s) failed: ${bad.map((r) => r.name).join(', ')}`
    : `all ${rows.length} server(s) ok`
  return `${[line(head), ...cells.map(line), last].join('\n')}\n`
}
