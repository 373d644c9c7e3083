/**
 * --prometheus FILE: the report as OpenMetrics text for node_exporter's textfile collector (which
 * reads the Prometheus text format; OpenMetrics' gauges and `# EOF` parse there too). One gauge
 * per check and status (1 for the status it has, 0 for the others, so alerts can match on
 * status="fail"), each check's duration, the overall status, and when the run ended. Written
 * atomically: a temporary file in the same directory, renamed over FILE.
 */
import { randomBytes } from 'node:crypto'
import { chmod, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { CheckStatus, DoctorReport } from '../model.js'

const STATUSES: readonly CheckStatus[] = ['ok', 'warn', 'fail', 'skip']
const OVERALL: readonly DoctorReport['status'][] = ['ok', 'warn', 'fail']

/** A label value: backslash, double quote and newline escaped. */
export function labelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

const labels = (l: Record<string, string>) =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}="${labelValue(v)}"`)
    .join(',')}}`

const seconds = (ms: number) => String(ms / 1000)

export function toOpenMetrics(report: DoctorReport, domain: string, endedMs = Date.now()): string {
  const lines: string[] = []
  const family = (name: string, help: string, unit?: string) => {
    lines.push(`# TYPE ${name} gauge`)
    if (unit) lines.push(`# UNIT ${name} ${unit}`)
    lines.push(`# HELP ${name} ${help}`)
  }
  family('chatmail_doctor_check', 'Status of each chatmail doctor check: 1 for the status it has, 0 for the others.')
  for (const c of report.checks) {
    for (const s of STATUSES) {
      lines.push(
        `chatmail_doctor_check${labels({ domain, id: c.id, group: c.group, status: s })} ${c.status === s ? 1 : 0}`,
      )
    }
  }
  family('chatmail_doctor_check_duration_seconds', 'How long each chatmail doctor check took.', 'seconds')
  for (const c of report.checks) {
    lines.push(
      `chatmail_doctor_check_duration_seconds${labels({ domain, id: c.id, group: c.group })} ${seconds(c.durationMs)}`,
    )
  }
  family('chatmail_doctor_status', 'Overall verdict of the chatmail doctor run: 1 for the verdict, 0 for the others.')
  for (const s of OVERALL)
    lines.push(`chatmail_doctor_status${labels({ domain, status: s })} ${report.status === s ? 1 : 0}`)
  const total = report.durationMs ?? report.checks.reduce((sum, c) => Math.max(sum, c.durationMs), 0)
  family('chatmail_doctor_run_duration_seconds', 'Wall time of the chatmail doctor run.', 'seconds')
  lines.push(`chatmail_doctor_run_duration_seconds${labels({ domain })} ${seconds(total)}`)
  family('chatmail_doctor_last_run_timestamp_seconds', 'When the chatmail doctor run ended (Unix time).', 'seconds')
  lines.push(`chatmail_doctor_last_run_timestamp_seconds${labels({ domain })} ${seconds(endedMs)}`)
  lines.push('# EOF', '')
  return lines.join('\n')
}

/** Writes `text` to `path` atomically (temp file in the same directory, mode 0644, then rename). */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await writeFile(tmp, text, { mode: 0o644, flag: 'wx' })
    await chmod(tmp, 0o644) // whatever the umask: node_exporter runs as another user
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
