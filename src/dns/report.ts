/** `chatmail dns --check` as text: one line per record, the zone lines to set under each bad one. */
import { Chalk } from 'chalk'
import { colourOn } from '../lib/output.js'
import { printable } from '../lib/printable.js'
import type { ZoneCheck } from './index.js'

/** Colours as everywhere in the CLI: none unless stderr is a colour terminal, or FORCE_COLOR asks. */
const chalk = colourOn(process.stderr) || process.env.FORCE_COLOR ? new Chalk() : new Chalk({ level: 0 })

const MARK: Record<string, (s: string) => string> = {
  ok: chalk.green,
  missing: chalk.red,
  wrong: chalk.red,
  error: chalk.yellow,
}

export function renderCheck(c: ZoneCheck): string {
  const lines = [`${c.domain}, asked at ${c.nameservers.join(', ')}:`]
  const width = Math.min(48, Math.max(...c.records.map((r) => r.name.length)))
  for (const r of c.records) {
    const status = r.status === 'ok' || r.level === 'required' ? r.status : `${r.status}*`
    const mark = (MARK[r.status] ?? ((s: string) => s))(status.padEnd(8))
    lines.push(`  ${mark} ${r.type.padEnd(5)} ${r.name.padEnd(width)}  ${printable(r.detail)}`)
    for (const [i, f] of (r.fix ?? []).entries()) lines.push(`  ${''.padEnd(8)} ${i === 0 ? 'set: ' : '     '} ${f}`)
  }
  if (c.opendkim) {
    const mark = c.opendkim.status === 'ok' ? chalk.green : c.opendkim.status === 'fail' ? chalk.red : chalk.yellow
    lines.push(
      `  ${mark(c.opendkim.status.padEnd(8))} host  ${'opendkim-testkey'.padEnd(width)}  ${printable(c.opendkim.detail)}`,
    )
  }
  const count = (s: string) => c.records.filter((r) => r.status === s).length
  const bad = ['missing', 'wrong', 'error'].filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`)
  lines.push(
    bad.length === 0
      ? `all ${c.records.length} records ok${c.opendkim?.status === 'fail' ? ', but the host cannot look them up (above)' : ''}`
      : `${bad.join(', ')} of ${c.records.length}${c.records.some((r) => r.status !== 'ok' && r.level === 'recommended') ? ' (* recommended)' : ''}: set the lines above, then run chatmail dns --check again`,
  )
  return `${lines.join('\n')}\n`
}
