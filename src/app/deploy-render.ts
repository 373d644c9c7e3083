/**
 * How `deploy host` shows itself: the progress display it picks, the confirmation prompt, the
 * JSON summary and the text lines. The command only parses flags and writes what these return.
 */
import { createInterface } from 'node:readline/promises'
import { formatPlan, type Plan } from '../deploy/plan.js'
import { type DeployProgress, plainProgress, ttyProgress } from '../deploy/progress.js'
import type { DeployHostResult } from './deploy-host.js'

export interface DeployView {
  json: boolean
  dryRun: boolean
  /** --yes: apply without asking. */
  yes: boolean
  verbose: boolean
  /** stderr is a terminal. */
  tty: boolean
}

/** Was there no one to ask (no terminal, or --json) and no --yes or --dry-run? */
export const needsYes = (v: DeployView, stdinTty: boolean): boolean =>
  !v.dryRun && !v.yes && !(stdinTty && v.tty && !v.json)

/** A live line on a terminal when nothing will be asked; plain lines otherwise (none with --json). */
export const isLive = (v: DeployView): boolean => v.tty && !v.json && (v.yes || v.dryRun)

export function deployProgress(v: DeployView, note: (line: string) => void): DeployProgress {
  if (v.json) return plainProgress(() => {})
  return isLive(v) ? ttyProgress(v.dryRun ? 'planning' : 'deploying') : plainProgress(note)
}

/** The engine's confirm hook: shows the plan on stderr and asks, unless --yes, --json or a live display. */
export function confirmPlan(v: DeployView, stderr: NodeJS.WriteStream = process.stderr) {
  return async (plan: Plan): Promise<boolean> => {
    if (v.json || isLive(v)) return true // live: the changes are listed when the display is done
    stderr.write(`${formatPlan(plan, v.verbose)}\n`)
    if (v.yes) return true
    const rl = createInterface({ input: process.stdin, output: stderr })
    const answer = await rl.question(`apply ${plan.changed} change(s)? [y/N] `)
    rl.close()
    return /^y(es)?$/i.test(answer.trim())
  }
}

/** The `--json` shape of `deploy host`. */
export function deploySummary(out: DeployHostResult, dryRun: boolean) {
  const { plan, applied } = out.result
  return {
    host: `${out.target.user}@${out.target.host}:${out.target.port}`,
    dryRun,
    changed: plan.changed,
    unchanged: plan.items.length - plan.changed,
    resources: plan.items.map((i) => ({ id: i.resource.id, action: i.action, changes: i.changes })),
    restarted: applied ? [...applied.restarted, ...applied.reloaded, ...applied.started] : [],
    roundTrips: out.result.roundTrips,
    durationMs: out.result.durationMs,
    ...(out.doctor ? { doctor: { status: out.doctor.status, checks: out.doctor.checks } } : {}),
  }
}

/** The plan was shown and not confirmed. */
export const declined = (out: DeployHostResult, dryRun: boolean): boolean =>
  !dryRun && out.result.plan.changed > 0 && !out.result.applied

/** The text result for stdout (the doctor's report follows it, rendered by the doctor). */
export function deployText(out: DeployHostResult, v: DeployView): string[] {
  const { plan } = out.result
  const s = deploySummary(out, v.dryRun)
  if (v.dryRun) {
    return [
      plan.changed === 0 ? 'nothing to change' : formatPlan(plan, v.verbose),
      `${plan.changed} to change, ${s.unchanged} unchanged (dry run: nothing was changed)`,
    ]
  }
  if (declined(out, v.dryRun)) return ['nothing changed (not confirmed)']
  const lines = isLive(v)
    ? formatPlan(plan)
        .split('\n')
        .filter((l) => /^[+~] /.test(l))
    : []
  lines.push(
    `${s.host}: ${plan.changed} changed, ${s.unchanged} unchanged` +
      `${s.restarted.length ? `; restarted ${s.restarted.join(', ')}` : '; nothing restarted'}` +
      ` (${(out.result.durationMs / 1000).toFixed(1)} s, ${out.result.roundTrips} round trips)`,
  )
  return lines
}
