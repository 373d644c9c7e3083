import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import type { DoctorReport } from '../../src/doctor/model.js'
import { toJsonReport } from '../../src/doctor/report/json.js'
import { toJUnit, xmlEscape } from '../../src/doctor/report/junit.js'
import { renderText } from '../../src/doctor/report/plain.js'
import { treeText } from '../../src/doctor/report/tty.js'
import { toJsonError } from '../../src/lib/errors.js'
import { printable } from '../../src/lib/printable.js'

const report: DoctorReport = {
  status: 'fail',
  durationMs: 1234,
  checks: [
    { id: 'imap.tls', group: 'imap', title: 'cert', status: 'ok', detail: 'TLSv1.3 <ok> & "fine"', durationMs: 12 },
    {
      id: 'imap.login',
      group: 'imap',
      title: 'login',
      status: 'fail',
      detail: "refused: 'x' <y>\u0001",
      hint: 'use a & b',
      durationMs: 1500,
    },
    { id: 'metadata.turns', group: 'discovery', title: 'turns', status: 'skip', detail: 'not set', durationMs: 0 },
    {
      id: 'turn.credential.expiry',
      group: 'credentials',
      title: 'exp',
      status: 'warn',
      detail: 'soon',
      hint: 'raise ttl',
      durationMs: 1,
    },
  ],
}

/** Parses with Python's XML parser (an independent, strict one) and returns what JUnit readers see. */
function parseXml(xml: string): { suites: number; name: string; cases: [string, string, string, string][] } {
  const script = `import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
suites = root.findall('testsuite')
cases = [[c.get('classname'), c.get('name'), c.get('time'), (c[0].tag if len(c) else '')] for c in suites[0].findall('testcase')]
print(json.dumps({'suites': len(suites), 'name': suites[0].get('name'), 'cases': cases}))`
  return JSON.parse(execFileSync('python3', ['-c', script], { input: xml, encoding: 'utf8' }))
}

describe('junit', () => {
  it('escapes text so a strict parser reads it back, and drops characters XML cannot carry', () => {
    expect(xmlEscape(`a<b>&"c"'d'\u0000`)).toBe('a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;')
  })

  it('writes one testsuite and one testcase per check: classname = group, name = id, time in seconds', () => {
    const parsed = parseXml(toJUnit(report))
    expect(parsed.suites).toBe(1)
    expect(parsed.name).toBe('chatmail doctor')
    expect(parsed.cases).toEqual([
      ['imap', 'imap.tls', '0.012', 'system-out'],
      ['imap', 'imap.login', '1.500', 'failure'],
      ['discovery', 'metadata.turns', '0.000', 'skipped'],
      ['credentials', 'turn.credential.expiry', '0.001', 'system-out'],
    ])
  })
})

describe('json', () => {
  it('has exactly the contract fields, hint null when absent', () => {
    const json = toJsonReport(report)
    expect(Object.keys(json)).toEqual(['status', 'checks'])
    expect(json.checks[0]).toEqual({
      id: 'imap.tls',
      group: 'imap',
      title: 'cert',
      status: 'ok',
      detail: 'TLSv1.3 <ok> & "fine"',
      hint: null,
      durationMs: 12,
    })
    expect(toJsonError({ message: 'no domain', exitCode: 3 })).toEqual({
      status: 'error',
      error: { message: 'no domain', hint: null, exitCode: 3 },
    })
  })
})

describe('text', () => {
  it('lists checks in order with the fix under failures and warnings, and no colour when off', () => {
    const text = renderText(report, { colour: false })
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^ok\s+imap\.tls/)
    expect(lines[1]).toMatch(/^FAIL\s+imap\.login/)
    expect(lines[2]).toContain('fix: use a & b')
    expect(text).toContain('fix: raise ttl')
    expect(text).toContain('1 ok, 1 warn, 1 failed, 1 skipped')
    expect(text).not.toContain('\u001b[')
    expect(renderText(report, { colour: true })).toContain('\u001b[')
  })
})

describe('server text in text output (issue 9 item 12)', () => {
  const hostile = '\u001b]0;owned\u0007\u001b[2J\u001b[H\r\nok  imap.tls  all checks passed\u009b\u202e'
  const result = {
    id: 'imap.login',
    group: 'imap',
    title: 'login',
    status: 'fail' as const,
    detail: `refused: ${hostile}`,
    hint: `server says ${hostile}`,
    durationMs: 3,
  }
  // Every control character but the newlines the report itself puts between its lines.
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/

  it('printable shows every control character as an escape and leaves ordinary text alone', () => {
    expect(printable('plain text, ünïcödé, 🔑 and tabs?')).toBe('plain text, ünïcödé, 🔑 and tabs?')
    expect(printable('a\u001b[2Jb\nc\u202ed')).toBe('a\\x1b[2Jb\\x0ac\\u{202e}d')
    expect(printable(hostile)).not.toMatch(CONTROL)
  })

  it('the plain report and progress lines carry no control character from a check', () => {
    const text = renderText({ status: 'fail', checks: [result] }, { colour: false })
    expect(text).not.toMatch(CONTROL)
    expect(text).toContain('\\x1b]0;owned\\x07')
    // Only the report's own lines: the check, its fix, the blank line, the verdict and what to do first.
    expect(text.trimEnd().split('\n')).toHaveLength(5)
    expect(text.trimEnd().split('\n')[4]).not.toMatch(CONTROL)
  })

  it('the live tree on a terminal carries none either', () => {
    for (const status of ['ok', 'warn', 'fail', 'skip'] as const) {
      const shown = treeText({ ...result, status })
      expect(shown.text).toContain('\\x1b]0;owned')
      expect(shown.text).not.toMatch(CONTROL)
    }
    expect(treeText(result).text.split('\n')).toHaveLength(2) // the line and its fix, nothing the server added
  })
})
