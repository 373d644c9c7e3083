/**
 * Runs checks concurrently: every check starts at once and waits only for the checks in its
 * `after`; each has its own timeout (an AbortSignal the check passes to its sockets). Results are
 * settled in registry order, and `onResult` sees each one in that order as soon as it and every
 * check before it are known. Settling says each root cause once (causes.ts): a failure whose cause
 * an earlier check already failed on is reported as skipped, naming that check, and a check skipped
 * for a dependency names the check where the chain of failures and skips began.
 */
import { performance } from 'node:perf_hooks'
import type { Cause } from './causes.js'
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

/** A check's result as it came, with its root cause and, when it was skipped for one, the dependency. */
interface Raw {
  result: CheckResult
  cause?: Cause
  blockedBy?: string
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
async function runTimed(def: CheckDef, ctx: Omit<CheckContext, 'signal'>): Promise<Raw> {
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
    const result = toResult(def, outcome, performance.now() - started)
    return outcome.cause && outcome.status === 'fail' ? { result, cause: outcome.cause } : { result }
  } finally {
    clearTimeout(timer)
  }
}

/** Why a check cannot run, given its dependencies' results; undefined when it can. */
async function blockedBy(
  def: CheckDef,
  byId: Map<string, CheckDef>,
  plan: CheckPlan,
  results: Map<string, Promise<Raw>>,
  findings: Findings,
): Promise<{ detail: string; dep?: string } | undefined> {
  const reasons = await Promise.all(
    (def.after ?? []).map(async (depId) => {
      const dep = byId.get(depId)
      if (!dep) return { detail: `needs ${depId}, which is not a known check` }
      const providedByOverride = dep.provides !== undefined && findings[dep.provides] !== undefined
      // What the dependency would discover is known already: start now, in parallel with it.
      if (providedByOverride) return undefined
      const pending = results.get(depId)
      if (!pending || !plan.has(depId)) return { detail: `needs ${depId}, which was not selected` }
      const r = (await pending).result
      if (r.status === 'ok' || r.status === 'warn') return undefined
      return { detail: `needs ${depId}, which ${r.status === 'fail' ? 'failed' : 'was skipped'}`, dep: depId }
    }),
  )
  return reasons.find((r) => r !== undefined)
}

/** Settles raw results in registry order: each root cause said once, skips naming where their chain began. */
class Settler {
  /** The check that first failed on each cause. */
  private readonly causes = new Map<string, string>()
  /** For each settled check that did not pass: the check its failure or skip goes back to. */
  private readonly roots = new Map<string, CheckResult>()

  settle(raw: Raw): CheckResult {
    const { result, cause, blockedBy } = raw
    const first = cause ? this.causes.get(cause.key) : undefined
    if (cause && !first) this.causes.set(cause.key, result.id)
    // The check this one's failure or skip goes back to, when it is another one.
    const via = first ?? blockedBy
    const root = via ? this.roots.get(via) : undefined
    let settled = result
    if (cause && first) settled = skipped(result, `needs ${first}, which failed: ${cause.says}`)
    else if (root && blockedBy && root.id !== blockedBy) {
      settled = skipped(result, `needs ${root.id}, which ${root.status === 'fail' ? 'failed' : 'was skipped'}`)
    }
    if (settled.status === 'fail' || settled.status === 'skip') this.roots.set(result.id, root ?? settled)
    return settled
  }
}

const skipped = (r: CheckResult, detail: string): CheckResult => ({
  id: r.id,
  group: r.group,
  title: r.title,
  status: 'skip',
  detail,
  durationMs: r.durationMs,
})

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
  const results = new Map<string, Promise<Raw>>()
  const base = {
    options,
    findings,
    state,
    timeoutMs: options.timeoutMs,
    result: async (id: string): Promise<CheckResult> => {
      const pending = results.get(id)
      if (!pending) throw new Error(`check ${id} is not part of this run`)
      return (await pending).result
    },
  }
  const execute = async (def: CheckDef): Promise<Raw> => {
    await Promise.resolve() // let every check be registered before any looks another up
    if (plan.get(def.id) === 'skipped')
      return { result: toResult(def, { status: 'skip', detail: 'skipped (--skip)' }, 0) }
    const blocked = await blockedBy(def, byId, plan, results, findings)
    if (blocked) {
      const result = toResult(def, { status: 'skip', detail: blocked.detail }, 0)
      return blocked.dep ? { result, blockedBy: blocked.dep } : { result }
    }
    run.onStart?.(def)
    return runTimed(def, base)
  }
  const planned = defs.filter((d) => plan.has(d.id))
  for (const def of planned) results.set(def.id, execute(def))
  try {
    const settler = new Settler()
    const settled: CheckResult[] = []
    for (const def of planned) {
      const result = settler.settle(await (results.get(def.id) as Promise<Raw>))
      run.onResult?.(result)
      settled.push(result)
    }
    return settled
  } finally {
    if (!run.state) await state.close()
  }
}
