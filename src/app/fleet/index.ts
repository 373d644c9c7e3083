/** `chatmail fleet …`: the inventory loaded, a task run over it, the rows rendered. */
import { ExitCode } from '../../lib/errors.js'
import { note } from '../../lib/output.js'
import { loadInventory } from './inventory.js'
import { type FleetRow, type FleetTask, fleetOk, fleetTable, runFleet } from './run.js'

export { DEFAULT_INVENTORY } from './inventory.js'
export { deployTask, doctorTask } from './tasks.js'

export interface FleetRun {
  ok: boolean
  rows: FleetRow[]
  table: string
}

/** Runs `task` over the inventory; each server's line goes to stderr as it finishes (unless quiet). */
export async function fleet(dir: string, concurrency: number, task: FleetTask, quiet: boolean): Promise<FleetRun> {
  const entries = await loadInventory(dir)
  const rows = await runFleet(entries, concurrency, task, (r) => {
    if (!quiet) note(`${r.name}: ${r.status} (${(r.durationMs / 1000).toFixed(1)} s)`)
  })
  return { ok: fleetOk(rows), rows, table: fleetTable(rows) }
}

/** The --json shape. */
export const fleetJson = (run: FleetRun) => ({
  status: run.ok ? 'ok' : 'fail',
  servers: run.rows.map((r) => ({
    name: r.name,
    config: r.path,
    status: r.status,
    summary: r.summary,
    durationMs: r.durationMs,
    ...(r.data === undefined ? {} : { result: r.data }),
  })),
})

/** A fleet command's whole run: the exit code set, the table written (or the JSON returned). */
export async function fleetCommand(
  flags: { inventory: string; concurrency: number },
  task: FleetTask,
  json: boolean,
): Promise<ReturnType<typeof fleetJson> | undefined> {
  const run = await fleet(flags.inventory, flags.concurrency, task, json)
  process.exitCode = run.ok ? ExitCode.ok : ExitCode.failed
  if (json) return fleetJson(run)
  process.stdout.write(run.table)
  return undefined
}
