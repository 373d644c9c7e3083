/**
 * --only / --skip: which checks run. A selector is a check id, a group, or an id prefix
 * ("metadata" selects metadata.*). --only also runs what the chosen checks wait for, unless an
 * override already supplied the fact that dependency would discover.
 */
import { usageError } from '../lib/errors.js'
import type { CheckDef, Findings } from './model.js'

export interface Selection {
  only?: readonly string[] | undefined
  skip?: readonly string[] | undefined
  /**
   * Checks that exist but cannot be part of this run (the host group without SSH): --skip may name
   * them (there is nothing to skip), --only may not.
   */
  absent?: readonly CheckDef[] | undefined
}

/** What happens to each reported check; checks absent from the map are not run nor reported. */
export type CheckPlan = Map<string, 'run' | 'skipped'>

export function selectorMatches(def: CheckDef, selector: string): boolean {
  return def.id === selector || def.group === selector || def.id.startsWith(`${selector}.`)
}

/** Splits comma lists ("a,b" "c") into selectors, refusing ones that match no check. */
export function parseSelectors(defs: readonly CheckDef[], values: readonly string[] | undefined, flag: string) {
  const selectors = (values ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = selectors.filter((s) => !defs.some((d) => selectorMatches(d, s)))
  if (unknown.length > 0) {
    const groups = [...new Set(defs.map((d) => d.group))]
    throw usageError(
      `${flag} ${unknown.join(',')}: no such check or group`,
      `groups: ${groups.join(', ')}; ids: ${defs.map((d) => d.id).join(', ')}`,
    )
  }
  return selectors
}

function withDependencies(defs: readonly CheckDef[], chosen: Set<string>, findings: Findings): Set<string> {
  const byId = new Map(defs.map((d) => [d.id, d]))
  const todo = [...chosen]
  while (todo.length > 0) {
    const def = byId.get(todo.pop() as string)
    for (const depId of def?.after ?? []) {
      const dep = byId.get(depId)
      if (!dep || chosen.has(depId)) continue
      if (dep.provides && findings[dep.provides] !== undefined) continue
      chosen.add(depId)
      todo.push(depId)
    }
  }
  return chosen
}

export function planChecks(defs: readonly CheckDef[], selection: Selection, findings: Findings = {}): CheckPlan {
  const only = parseSelectors(defs, selection.only, '--only')
  const skip = parseSelectors([...defs, ...(selection.absent ?? [])], selection.skip, '--skip')
  const chosen =
    only.length > 0
      ? withDependencies(
          defs,
          new Set(defs.filter((d) => only.some((s) => selectorMatches(d, s))).map((d) => d.id)),
          findings,
        )
      : new Set(defs.map((d) => d.id))
  const plan: CheckPlan = new Map()
  for (const def of defs) {
    if (!chosen.has(def.id)) continue
    plan.set(def.id, skip.some((s) => selectorMatches(def, s)) ? 'skipped' : 'run')
  }
  return plan
}
