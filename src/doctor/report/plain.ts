/**
 * Plain text: one line per finished check (progress, stderr) and the final report (stdout).
 * What a server said is printed with its control characters escaped (lib/printable.ts).
 */
import { Chalk, type ChalkInstance } from 'chalk'
import { printable } from '../../lib/printable.js'
import type { CheckResult, CheckStatus, DoctorReport } from '../model.js'

export interface TextStyle {
  colour: boolean
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' }

function paint(chalk: ChalkInstance, status: CheckStatus, text: string): string {
  switch (status) {
    case 'ok':
      return chalk.green(text)
    case 'warn':
      return chalk.yellow(text)
    case 'fail':
      return chalk.red.bold(text)
    default:
      return chalk.dim(text)
  }
}

const chalkFor = (style: TextStyle): ChalkInstance => new Chalk({ level: style.colour ? 1 : 0 })

/** `FAIL  imap.login  detail (12 ms)` */
export function formatResultLine(r: CheckResult, style: TextStyle): string {
  const chalk = chalkFor(style)
  const ms = r.status === 'skip' ? '' : chalk.dim(` (${r.durationMs} ms)`)
  return `${paint(chalk, r.status, LABEL[r.status].padEnd(4))}  ${printable(r.id)}  ${printable(r.detail)}${ms}`
}

export function formatHintLine(r: CheckResult, style: TextStyle): string | undefined {
  if (!r.hint || (r.status !== 'fail' && r.status !== 'warn')) return undefined
  return `      ${chalkFor(style).cyan('fix:')} ${printable(r.hint)}`
}

export function summarize(report: DoctorReport): string {
  const count = (s: CheckStatus) => report.checks.filter((c) => c.status === s).length
  return `${count('ok')} ok, ${count('warn')} warn, ${count('fail')} failed, ${count('skip')} skipped`
}

/**
 * What to do first: the first failure in check order (the checks are ordered so that a root cause
 * comes before what depends on it), else the first warning; undefined when there is nothing to fix.
 */
export function firstFix(report: DoctorReport): string | undefined {
  const first =
    report.checks.find((c) => c.status === 'fail') ?? report.checks.find((c) => c.status === 'warn' && c.hint)
  if (!first?.hint) return undefined
  const others = report.checks.filter((c) => c !== first && c.status === first.status).length
  const then =
    others > 0
      ? ` (then the ${others} other ${first.status === 'fail' ? 'failure' : 'warning'}${others > 1 ? 's' : ''} above)`
      : ''
  return `first: ${printable(first.id)}: ${printable(first.hint)}${then}`
}

/** The whole report, in registry order, with the fix under each failure and warning, and what to do first. */
export function renderText(report: DoctorReport, style: TextStyle): string {
  const lines = report.checks.flatMap((r) => {
    const hint = formatHintLine(r, style)
    return hint ? [formatResultLine(r, style), hint] : [formatResultLine(r, style)]
  })
  const chalk = chalkFor(style)
  const verdict =
    report.status === 'fail' ? chalk.red.bold('FAILED') : paint(chalk, report.status, report.status.toUpperCase())
  lines.push('', `chatmail doctor: ${verdict}: ${summarize(report)}`)
  const first = firstFix(report)
  if (first) lines.push(first)
  return `${lines.join('\n')}\n`
}

/** Progress without a TTY: a line per check as it finishes. */
export function plainProgress(write: (line: string) => void, style: TextStyle) {
  return { onResult: (r: CheckResult) => write(`${formatResultLine(r, style)}\n`) }
}
