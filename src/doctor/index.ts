/** The doctor as a library: options in, a report out. Commands and deploy call runDoctor. */
import { performance } from 'node:perf_hooks'
import { type CheckDef, type DoctorOptions, type DoctorReport, overallStatus } from './model.js'
import { seedFindings } from './overrides.js'
import { loadChecks } from './registry.js'
import { RunState } from './run-state.js'
import { type RunOptions, runChecks } from './runner.js'
import { planChecks } from './select.js'

export interface DoctorRun extends Omit<RunOptions, 'findings' | 'plan' | 'state'> {
  /** The checks to run (default: the registry). */
  checks?: readonly CheckDef[]
  /** Called once, before anything runs, with the checks that will be reported, in order. */
  onPlan?(checks: CheckDef[]): void
}

export async function runDoctor(options: DoctorOptions, run: DoctorRun = {}): Promise<DoctorReport> {
  const defs = run.checks ?? (await loadChecks(options))
  // Without SSH the host group is not loaded; `--skip host` still names real checks: nothing to skip.
  const absent = run.checks || options.host ? [] : (await loadChecks({ host: true })).filter((d) => !defs.includes(d))
  const findings = seedFindings(options, Date.now())
  const plan = planChecks(defs, { ...run, absent }, findings)
  run.onPlan?.(defs.filter((d) => plan.has(d.id)))
  const started = performance.now()
  const state = RunState.start(options, plan)
  try {
    const checks = await runChecks(defs, options, { ...run, findings, plan, state })
    return { status: overallStatus(checks), checks, durationMs: Math.round(performance.now() - started) }
  } finally {
    await state.close()
  }
}

export { HostProbe } from './host-probe.js'
export { doctorOptions } from './options.js'
export { loadChecks } from './registry.js'
