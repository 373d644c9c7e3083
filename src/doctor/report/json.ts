/** --json: `{"status","checks":[{"id","group","title","status","detail","hint","durationMs"}]}`. */
import type { DoctorReport } from '../model.js'

export interface JsonCheck {
  id: string
  group: string
  title: string
  status: string
  detail: string
  hint: string | null
  durationMs: number
}

export interface JsonReport {
  status: DoctorReport['status']
  checks: JsonCheck[]
}

/** Every field always present (hint is null when there is none), in a stable key order. */
export function toJsonReport(report: DoctorReport): JsonReport {
  return {
    status: report.status,
    checks: report.checks.map((c) => ({
      id: c.id,
      group: c.group,
      title: c.title,
      status: c.status,
      detail: c.detail,
      hint: c.hint ?? null,
      durationMs: c.durationMs,
    })),
  }
}
