/**
 * Runs checks concurrently: every check starts at once and waits only for the checks in its
 * `after`; each has its own timeout (an AbortSignal the check passes to its sockets). Results come
 * back in registry order, and `onResult` sees each one as soon as it is known.
 */
import { performance } from 'node:perf_hooks'
import type { CheckContext, CheckDef, CheckOutcome, CheckResult, DoctorOptions, Findings } from './model.js'
import { RunState } from './run-state.js'
import { type CheckPlan, planChecks, type Selection } from './select.js'

export interface RunOptions extends Selection {
  /** Findings known before any check runs (from overrides). */
  findings?: Findings
  /** The plan made from the selection, when the caller made it already (it is made once per run). */
  plan?: CheckPlan
  /** The run's open resources; without one, the runner makes its own and closes it at the end. */
  state?: RunState
  onStart?(def: CheckDef): void
  onResult?(result: CheckResult): void
}

export const GENERIC_TIMEOUT_HINT =
  'the server did not answer in time: check that the service runs and that its port is reachable from here (firewall), or raise --timeout'

/** Refuses `after` cycles, which would wait forever. */
export function assertNoCycles(defs: readonly CheckDef[]): void {
  const byId = new Map(defs.map((d) => [d.id, d]))
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === 'done') return
    if (state.get(id) === 'visiting') throw new Error(`check dependency cycle: ${[...path, id].join(' -> ')}`)
    state.set(id, 'visiting')
    for (const dep of byId.get(id)?.after ?? []) visit(dep, [...path, id])
    state.set(id, 'done')
  }
  for (const def of defs) visit(def.id, [])
}

function toResult(def: CheckDef, outcome: CheckOutcome, durationMs: number): CheckResult {
  const hint = outcome.hint ?? (outcome.status === 'fail' ? 'see the detail; run again with --verbose' : undefined)
  return {
    id: def.id,
    group: def.group,
    title: def.title,
    status: outcome.status,
    detail: outcome.detail,
    ...(hint ? { hint } : {}),
    durationMs: Math.round(durationMs),
  }
}

function timeoutOutcome(def: CheckDef, timeoutMs: number): CheckOutcome {
  return {
    status: 'fail',
    detail: `no answer within ${timeoutMs / 1000} s (timed out)`,
    hint: def.timeoutHint ?? GENERIC_TIMEOUT_HINT,
  }
}

function crashOutcome(err: unknown): CheckOutcome {
  const message = err instanceof Error ? err.message : String(err)
  return {
    status: 'fail',
    detail: `the check itself failed: ${message}`,
    hint: 'this is a bug in chatmail doctor; please report it',
  }
}

/** Runs one check with its own deadline; a check that ignores its signal is cut off anyway. */
async function runTimed(def: CheckDef, ctx: Omit<CheckContext, 'signal'>): Promise<CheckResult> {
  const controller = new AbortController()
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<CheckOutcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error(`${def.id} timed out`))
      resolve(timeoutOutcome(def, ctx.timeoutMs))
    }, ctx.timeoutMs)
  })
  try {
    const work = Promise.resolve()
      .then(() => def.run({ ...ctx, signal: controller.signal }))
      .catch(crashOutcome)
    const outcome = await Promise.race([work, deadline])
    return toResult(def, outcome, performance.now() - started)
  } finally {
    clearTimeout(timer)
  }
}

/** Why a check cannot run, given its dependencies' results; undefined when it can. */
async function blockedBy(
  def: CheckDef,
  byId: Map<string, CheckDef>,
  plan: CheckPlan,
  results: Map<string, Promise<CheckResult>>,
  findings: Findings,
): Promise<string | undefined> {
  const reasons = await Promise.all(
    (def.after ?? []).map(async (depId) => {
      const dep = byId.get(depId)
      if (!dep) return `needs ${depId}, which is not a known check`
      const providedByOverride = dep.provides !== undefined && findings[dep.provides] !== undefined
      // What the dependency would discover is known already: start now, in parallel with it.
      if (providedByOverride) return undefined
      const pending = results.get(depId)
      if (!pending || !plan.has(depId)) return providedByOverride ? undefined : `needs ${depId}, which was not selected`
      const r = await pending
      if (r.status === 'ok' || r.status === 'warn' || providedByOverride) return undefined
      return `needs ${depId}, which ${r.status === 'fail' ? 'failed' : 'was skipped'}`
    }),
  )
  return reasons.find((r) => r !== undefined)
}

export async function runChecks(
  defs: readonly CheckDef[],
  options: DoctorOptions,
  run: RunOptions = {},
): Promise<CheckResult[]> {
  assertNoCycles(defs)
  const findings = run.findings ?? {}
  const plan = run.plan ?? planChecks(defs, run, findings)
  const state = run.state ?? new RunState()
  const byId = new Map(defs.map((d) => [d.id, d]))
  const results = new Map<string, Promise<CheckResult>>()
  const base = {
    options,
    findings,
    state,
    timeoutMs: options.timeoutMs,
    result: (id: string): Promise<CheckResult> =>
      results.get(id) ?? Promise.reject(new Error(`check ${id} is not part of this run`)),
  }
  const execute = async (def: CheckDef): Promise<CheckResult> => {
    await Promise.resolve() // let every check be registered before any looks another up
    if (plan.get(def.id) === 'skipped') return toResult(def, { status: 'skip', detail: 'skipped (--skip)' }, 0)
    const reason = await blockedBy(def, byId, plan, results, findings)
    if (reason) return toResult(def, { status: 'skip', detail: reason }, 0)
    run.onStart?.(def)
    return runTimed(def, base)
  }
  const planned = defs.filter((d) => plan.has(d.id))
  for (const def of planned) {
    const pending = execute(def)
    results.set(def.id, pending)
    pending.then((r) => run.onResult?.(r))
  }
  try {
    return await Promise.all(planned.map((d) => results.get(d.id) as Promise<CheckResult>))
  } finally {
    if (!run.state) await state.close()
  }
}
