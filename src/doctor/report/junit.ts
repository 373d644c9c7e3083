/** --junit FILE: one testsuite "chatmail doctor", one testcase per check (classname = group, name = id). */
import type { CheckResult, DoctorReport } from '../model.js'

export const SUITE_NAME = 'chatmail doctor'

/** XML 1.0 text/attribute escaping; characters XML cannot carry at all are dropped. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

const seconds = (ms: number) => (ms / 1000).toFixed(3)

function testcase(c: CheckResult): string {
  const open = `    <testcase classname="${xmlEscape(c.group)}" name="${xmlEscape(c.id)}" time="${seconds(c.durationMs)}">`
  const body = (() => {
    switch (c.status) {
      case 'fail':
        return `      <failure message="${xmlEscape(c.detail)}" type="fail">${xmlEscape(`${c.detail}\nfix: ${c.hint ?? ''}`)}</failure>`
      case 'skip':
        return `      <skipped message="${xmlEscape(c.detail)}"/>`
      case 'warn':
        return `      <system-out>${xmlEscape(`warning: ${c.detail}${c.hint ? `\nfix: ${c.hint}` : ''}`)}</system-out>`
      default:
        return `      <system-out>${xmlEscape(c.detail)}</system-out>`
    }
  })()
  return `${open}\n${body}\n    </testcase>`
}

export function toJUnit(report: DoctorReport, timestamp = new Date()): string {
  const count = (s: string) => report.checks.filter((c) => c.status === s).length
  const total = seconds(report.durationMs ?? report.checks.reduce((sum, c) => sum + c.durationMs, 0))
  const attrs = `name="${SUITE_NAME}" tests="${report.checks.length}" failures="${count('fail')}" errors="0" skipped="${count('skip')}" time="${total}"`
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites ${attrs}>`,
    `  <testsuite ${attrs} timestamp="${timestamp.toISOString().slice(0, 19)}">`,
    ...report.checks.map(testcase),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}
