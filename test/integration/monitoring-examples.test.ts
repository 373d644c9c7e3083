/**
 * examples/monitoring/ (issue 30, item 3) checked by the tools that will read it: Prometheus'
 * promtool checks the alert rules and runs their unit tests (one per alert), and the dashboard's
 * queries (as recording rules); systemd checks the prober's unit; the prober parses its example
 * targets file. Every metric the rules and the dashboard use is a documented one.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseTargetsText } from '../../src/app/probe/targets.js'

const DIR = join(process.cwd(), 'examples', 'monitoring')
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p))

function run(cmd: string, args: string[], cwd = DIR): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` })
    })
  })
}

const documented = async () => readFile(join(process.cwd(), 'docs', 'reference', 'metrics.md'), 'utf8')
const metricNames = (text: string) => [...new Set(text.match(/\b(chatmail_[a-z_]+|process_[a-z_]+)\b/g) ?? [])]

interface Dashboard {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>
}

describe.skipIf(!PROMTOOL)('alert rules and dashboard (promtool)', () => {
  let tmp: string
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'chatmail-monitoring-'))
  })
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true })
  })

  it('promtool accepts the rules, and every alert has a unit test that expects it to fire', async () => {
    const check = await run(PROMTOOL as string, ['check', 'rules', 'alerts.yml'])
    expect(check.output).toMatch(/SUCCESS: 7 rules found/)
    expect(check.code).toBe(0)
    const rules = await readFile(join(DIR, 'alerts.yml'), 'utf8')
    const tests = await readFile(join(DIR, 'alerts.test.yml'), 'utf8')
    const alerts = [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1] as string)
    expect(alerts).toHaveLength(7)
    for (const alert of alerts) {
      // A case where it fires (exp_alerts with labels) and one where it must not (exp_alerts: []).
      const cases = [...tests.matchAll(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:(.*)`, 'g'))]
      expect(cases.map((c) => (c[1] as string).trim() === '[]').sort(), alert).toEqual([false, true])
    }
  })

  it('promtool test rules: every alert fires when it should and not before', async () => {
    const r = await run(PROMTOOL as string, ['test', 'rules', 'alerts.test.yml'])
    expect(r.output).toMatch(/SUCCESS/)
    expect(r.code).toBe(0)
  })

  it('promtool notices a broken rule (the check is real)', async () => {
    const rules = (await readFile(join(DIR, 'alerts.yml'), 'utf8')).replace('for: 10m', 'for: 20m')
    await writeFile(join(tmp, 'alerts.yml'), rules)
    await writeFile(join(tmp, 'alerts.test.yml'), await readFile(join(DIR, 'alerts.test.yml')))
    const r = await run(PROMTOOL as string, ['test', 'rules', 'alerts.test.yml'], tmp)
    expect(r.code).not.toBe(0)
    expect(r.output).toMatch(/ChatmailCheckFailing/)
  })

  it("the dashboard's queries are valid PromQL and use documented metrics only", async () => {
    const dashboard = JSON.parse(await readFile(join(DIR, 'grafana-dashboard.json'), 'utf8')) as Dashboard
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))
    expect(exprs.length).toBeGreaterThan(5)
    const asRules = [
      'groups:',
      '  - name: dashboard',
      '    rules:',
      ...exprs.flatMap((e, i) => [
        `      - record: dashboard:query_${i}`,
        `        expr: ${JSON.stringify(e.replace(/\$domain/g, '.*'))}`,
      ]),
    ].join('\n')
    await writeFile(join(tmp, 'dashboard-rules.yml'), `${asRules}\n`)
    const r = await run(PROMTOOL as string, ['check', 'rules', 'dashboard-rules.yml'], tmp)
    expect(r.output).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`))
    const docs = await documented()
    const rules = await readFile(join(DIR, 'alerts.yml'), 'utf8')
    const used = metricNames(`${exprs.join('\n')}\n${rules.replace(/^\s+(summary|description):.*$/gm, '')}`)
    expect(used.length).toBeGreaterThan(5)
    for (const name of used) expect(docs, name).toContain(`\`${name}\``)
  })
})

describe('the prober examples', () => {
  it('the example targets file parses', async () => {
    const text = await readFile(join(DIR, 'probe.toml'), 'utf8')
    expect(parseTargetsText(text, 'probe.toml').map((t) => t.name)).toEqual([
      'chat.example.org',
      'staging.example.org',
      'other.example.net',
    ])
  })

  it.skipIf(!ANALYZE)('systemd-analyze verify finds nothing to say about the unit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chatmail-unit-'))
    try {
      const unit = (await readFile(join(DIR, 'chatmail-probe.service'), 'utf8')).replace(
        '/usr/bin/chatmail',
        '/bin/true',
      )
      await writeFile(join(dir, 'chatmail-probe.service'), unit)
      const r = await run(ANALYZE as string, ['verify', join(dir, 'chatmail-probe.service')], dir)
      expect(r.output).toBe('')
      expect(r.code).toBe(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
