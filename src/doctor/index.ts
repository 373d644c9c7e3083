/** The doctor as a library: options in, a report out. Commands and deploy call runDoctor. */
import { performance } from 'node:perf_hooks'
import { closeImapSession } from './imap-session.js'
import { type CheckDef, type DoctorOptions, type DoctorReport, overallStatus } from './model.js'
import { seedFacts } from './overrides.js'
import { loadChecks } from './registry.js'
import { type RunOptions, runChecks } from './runner.js'
import { planChecks } from './select.js'
import { closeTurnPrefetch, startTurnPrefetch } from './turn-prefetch.js'

export interface DoctorRun extends Omit<RunOptions, 'facts'> {
  /** The checks to run (default: the registry). */
  checks?: readonly CheckDef[]
  /** Called once, before anything runs, with the checks that will be reported, in order. */
  onPlan?(checks: CheckDef[]): void
}

export async function runDoctor(options: DoctorOptions, run: DoctorRun = {}): Promise<DoctorReport> {
  const defs = run.checks ?? (await loadChecks())
  const facts = seedFacts(options, Date.now())
  const plan = planChecks(defs, run, facts)
  run.onPlan?.(defs.filter((d) => plan.has(d.id)))
  const started = performance.now()
  if (plan.has('turn.allocate.udp') || plan.has('turn.allocate.tcp') || plan.has('turn.allocate.tls')) {
    startTurnPrefetch(facts, options)
  }
  try {
    const checks = await runChecks(defs, options, { ...run, facts })
    return { status: overallStatus(checks), checks, durationMs: Math.round(performance.now() - started) }
  } finally {
    await Promise.all([closeImapSession(facts), closeTurnPrefetch(facts)])
  }
}

export { loadChecks } from './registry.js'
