/**
 * `chatmail dns --check`'s look at the host's own opendkim: opendkim-testkey's output (as seen on a
 * Debian 12 test host, opendkim 2.11.0~beta2) judged, and the command passing shellcheck.
 */
import { spawnSync } from 'node:child_process'
import { describe, expect, test } from 'vitest'
import type { ZoneCheck } from '../../src/dns/index.js'
import { opendkimProbeCommand, parseOpendkimProbe } from '../../src/dns/opendkim-probe.js'
import { renderCheck } from '../../src/dns/report.js'

const out = (...lines: string[]) => `${lines.map((l) => `opendkim-testkey: ${l}`).join('\n')}\n`
const loaded = 'key loaded from /etc/dkimkeys/opendkim.private'
const checking = "checking key 'opendkim._domainkey.one.test'"

describe('the host opendkim probe', () => {
  test('key OK: found through opendkim’s own resolver, and it matches the private key', () => {
    expect(parseOpendkimProbe(out(loaded, checking, 'key not secure', 'key OK'), 'one.test')).toEqual({
      status: 'ok',
      detail:
        "the host's opendkim finds opendkim._domainkey.one.test through its own resolver; it matches the private key",
    })
  })
  test('another key published: fail, naming the private key', () => {
    const p = parseOpendkimProbe(out(loaded, checking, 'key not secure', 'keys do not match'), 'one.test')
    expect(p.status).toBe('fail')
    expect(p.detail).toMatch(/not the key the host signs with \(\/etc\/dkimkeys\/opendkim\.private\)/)
  })
  test('not found by the host although published: fail, saying that all arriving mail is refused', () => {
    const p = parseOpendkimProbe(out(loaded, checking, "'opendkim._domainkey.one.test' record not found"), 'one.test')
    expect(p.status).toBe('fail')
    expect(p.detail).toContain("('opendkim._domainkey.one.test' record not found)")
    expect(p.detail).toMatch(/refuses all arriving mail/)
  })
  test('no output or no opendkim', () => {
    expect(parseOpendkimProbe('', 'one.test')).toMatchObject({ status: 'fail' })
    expect(parseOpendkimProbe('chatmail: no opendkim\n', 'one.test')).toMatchObject({ status: 'skipped' })
  })
  test('the command: the deployed configuration; shellcheck-clean', () => {
    const cmd = opendkimProbeCommand('one.test')
    expect(cmd).toContain('opendkim-testkey -x /etc/opendkim.conf -d one.test -s opendkim -vvv')
    const sc = spawnSync('shellcheck', ['--shell=sh', '-'], { input: `${cmd}\n`, encoding: 'utf8' })
    if (sc.error === undefined) expect(sc.stdout, sc.stdout).toBe('')
  })
  test('the report: one line for the host, and a failing probe said in the summary', () => {
    const check: ZoneCheck = {
      status: 'fail',
      domain: 'one.test',
      nameservers: ['10.0.0.1:53'],
      records: [],
      opendkim: { status: 'fail', detail: 'cannot look up' },
    }
    const text = renderCheck(check)
    expect(text).toMatch(/fail\s+host\s+opendkim-testkey\s+cannot look up/)
    expect(text).toMatch(/records ok, but the host cannot look them up/)
  })
})
