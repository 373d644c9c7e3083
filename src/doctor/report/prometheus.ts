/**
 * --prometheus FILE: the report as OpenMetrics text for node_exporter's textfile collector (which
 * reads the Prometheus text format; OpenMetrics' gauges and `# EOF` parse there too). One gauge
 * per check and status (1 for the status it has, 0 for the others, so alerts can match on
 * status="fail"), each check's duration, how many checks ended with each status, the overall
 * status, and when the run ended. Written atomically: a temporary file in the same directory,
 * renamed over FILE.
 */
import { randomBytes } from 'node:crypto'
import { chmod, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { type MetricFamily, renderOpenMetrics } from '../../protocols/exposition.js'
import type { CheckStatus, DoctorReport } from '../model.js'

const STATUSES: readonly CheckStatus[] = ['ok', 'warn', 'fail', 'skip']
const OVERALL: readonly DoctorReport['status'][] = ['ok', 'warn', 'fail']

const seconds = (ms: number) => ms / 1000

/** The report's metric families (the prober adds its own to them). */
export function doctorFamilies(report: DoctorReport, domain: string, endedMs = Date.now()): MetricFamily[] {
  const gauge = (name: string, help: string, samples: MetricFamily['samples'], unit?: string): MetricFamily => ({
    name,
    type: 'gauge',
    help,
    samples,
    ...(unit ? { unit } : {}),
  })
  const total = report.durationMs ?? report.checks.reduce((sum, c) => Math.max(sum, c.durationMs), 0)
  return [
    gauge(
      'chatmail_doctor_check',
      'Status of each chatmail doctor check: 1 for the status it has, 0 for the others.',
      report.checks.flatMap((c) =>
        STATUSES.map((s) => ({
          labels: { domain, id: c.id, group: c.group, status: s },
          value: c.status === s ? 1 : 0,
        })),
      ),
    ),
    gauge(
      'chatmail_doctor_check_duration_seconds',
      'How long each chatmail doctor check took.',
      report.checks.map((c) => ({ labels: { domain, id: c.id, group: c.group }, value: seconds(c.durationMs) })),
      'seconds',
    ),
    gauge(
      'chatmail_doctor_checks',
      'How many chatmail doctor checks ended with each status.',
      STATUSES.map((s) => ({
        labels: { domain, status: s },
        value: report.checks.filter((c) => c.status === s).length,
      })),
    ),
    gauge(
      'chatmail_doctor_status',
      'Overall verdict of the chatmail doctor run: 1 for the verdict, 0 for the others.',
      OVERALL.map((s) => ({ labels: { domain, status: s }, value: report.status === s ? 1 : 0 })),
    ),
    gauge(
      'chatmail_doctor_run_duration_seconds',
      'Wall time of the chatmail doctor run.',
      [{ labels: { domain }, value: seconds(total) }],
      'seconds',
    ),
    gauge(
      'chatmail_doctor_last_run_timestamp_seconds',
      'When the chatmail doctor run ended (Unix time).',
      [{ labels: { domain }, value: seconds(endedMs) }],
      'seconds',
    ),
  ]
}

export function toOpenMetrics(report: DoctorReport, domain: string, endedMs = Date.now()): string {
  return renderOpenMetrics(doctorFamilies(report, domain, endedMs))
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
