/**
 * Prometheus' text exposition format (0.0.4: what Prometheus scrapes, node_exporter's textfile
 * collector reads, and `promtool check metrics` checks): families with TYPE and HELP, samples with
 * escaped label values. A gauge may carry OpenMetrics' `# UNIT` line and the text ends with
 * `# EOF`, both comments to the 0.0.4 parser. A counter is declared and sampled under its `_total`
 * name. Pure: used by the doctor's --prometheus file, the prober (chatmail probe) and, bundled, by
 * the programs on the host.
 */

export type MetricType = 'gauge' | 'counter'

export interface Sample {
  labels?: Record<string, string>
  value: number
}

export interface MetricFamily {
  name: string
  type: MetricType
  help: string
  unit?: string
  samples: readonly Sample[]
}

/** The content type a scrape answer carries. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** A label value: backslash, double quote and newline escaped. */
export function labelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function labelSet(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {})
  if (entries.length === 0) return ''
  return `{${entries.map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}`
}

/** A number as OpenMetrics spells it (NaN and the infinities by name). */
function numberText(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Number.POSITIVE_INFINITY) return '+Inf'
  if (n === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(n)
}

/** The lines of one family (no `# EOF`). */
export function familyLines(f: MetricFamily): string[] {
  const name = f.type === 'counter' ? `${f.name}_total` : f.name
  const lines = [`# TYPE ${name} ${f.type}`]
  if (f.unit && f.type === 'gauge') lines.push(`# UNIT ${name} ${f.unit}`)
  lines.push(`# HELP ${name} ${f.help}`)
  for (const s of f.samples) lines.push(`${name}${labelSet(s.labels)} ${numberText(s.value)}`)
  return lines
}

/** A whole exposition: the families in order, then `# EOF`. */
export function renderOpenMetrics(families: readonly MetricFamily[]): string {
  return `${[...families.flatMap(familyLines), '# EOF'].join('\n')}\n`
}
