/**
 * Issue 30 on a deployed Debian host (scripts/testhost.sh, index 190): `chatmail fleet deploy` and
 * `fleet doctor` over an inventory of that host and a broken one (SSH refused, nothing listening):
 * the good one finishes, the table names the broken one, exit 1. Then `chatmail probe` with the
 * host's chatmail.toml as its target: the TURN gauges are ok; coturn stopped on the host, they fail;
 * and the scraped series, fed to `promtool test rules` with examples/monitoring/alerts.yml, fire
 * ChatmailTurnDown (Prometheus' rule engine as promtool runs it, not a Prometheus server).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN } from '../helpers/cli.js'
import { type DeployedHost, startDeployedHost } from '../helpers/deployed-host.js'
import { guestShell, testHostSkipReason } from '../helpers/testhost.js'

const OPTS = { name: 'th-mon', index: 190 }
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))
const skip = testHostSkipReason() ?? (PROMTOOL ? undefined : 'promtool not installed')

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe.skipIf(skip)(`monitoring on a deployed host${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: DeployedHost
  let probe: ChildProcess | undefined
  let sshArgs: string[]

  beforeAll(async () => {
    d = await startDeployedHost(OPTS)
    const ip = d.host.host
    await writeFile(join(d.dir, 'ca.pem'), await guestShell(d.host, 'cat /etc/chatmail/tls/fullchain.pem'))
    await mkdir(join(d.dir, 'servers'))
    const good = (await readFile(join(d.dir, 'chatmail.toml'), 'utf8'))
      .replace(/^# destination = .*$/m, `destination = "root@${ip}"`)
      .replace(/^# iroh_relay_source = .*$/m, `iroh_relay_source = "${d.mirror.source}"`)
      .replace(/^# iroh_relay_sha256 = .*$/m, `iroh_relay_sha256 = "${d.mirror.sha256}"`)
    expect(good).toMatch(/^destination = /m)
    await writeFile(join(d.dir, 'servers', 'good.toml'), good, { mode: 0o600 })
    // A server that is not there: SSH refused (a closed port on this machine), no IMAP either.
    const broken = `domain = "127.0.0.3"\n[turn]\nsecret = "0123456789abcdef0123456789abcdef"\n[deploy]\ndestination = "root@127.0.0.3:1"\n`
    await writeFile(join(d.dir, 'servers', 'broken.toml'), broken, { mode: 0o600 })
    await copyFile(d.host.knownHostsFile, join(d.dir, 'known_hosts'))
    sshArgs = ['-i', d.host.keyFile, '--known-hosts', join(d.dir, 'known_hosts')]
  }, 1_200_000)

  afterAll(async () => {
    if (probe && probe.exitCode === null) {
      probe.kill('SIGTERM')
      await once(probe, 'exit')
    }
    await d?.stop()
  }, 180_000)

  it('fleet deploy: the host converges (0 changed), the broken server is named, exit 1', async () => {
    const r = await d.cli(['fleet', 'deploy', '--yes', '--concurrency', '2', '--skip-dns-check', ...sshArgs], 900_000)
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stdout.trimEnd().split('\n')
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? ''
    expect(row(d.host.host)).toMatch(/\s(ok|warn)\s.*\s0 changed; doctor: \d+ ok, \d+ warn, 0 fail$/)
    expect(row('127.0.0.3')).toMatch(/\serror\s/)
    expect(lines.at(-1)).toBe('1 of 2 server(s) failed: 127.0.0.3')
  }, 900_000)

  it('fleet doctor: the host passes, the broken one fails, exit 1', async () => {
    const r = await d.cli(['fleet', 'doctor', '--ca', 'ca.pem', '--json'], 600_000)
    expect(r.code, r.stderr).toBe(1)
    const out = JSON.parse(r.stdout) as { servers: Array<{ name: string; status: string; summary: string }> }
    expect(out.servers.map((s) => [s.name, s.status === 'warn' ? 'ok' : s.status])).toEqual([
      ['127.0.0.3', 'fail'],
      [d.host.host, 'ok'],
    ])
  }, 600_000)

  it('chatmail probe: TURN ok, then coturn stopped: the turn gauges fail and ChatmailTurnDown fires', async () => {
    const ip = d.host.host
    await writeFile(
      join(d.dir, 'probe.toml'),
      `[[target]]\nname = "${ip}"\nconfig = "servers/good.toml"\nca = "ca.pem"\nonly = ["turn"]\ntimeout = 10\n`,
    )
    probe = spawn(
      process.execPath,
      [BIN, 'probe', '--targets', 'probe.toml', '--listen', '127.0.0.1:0', '--min-interval', '0'],
      { cwd: d.dir, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let err = ''
    probe.stderr?.on('data', (b: Buffer) => {
      err += b.toString()
    })
    for (let i = 0; i < 400 && !/listening on/.test(err); i++) await new Promise((r) => setTimeout(r, 50))
    const base = /listening on (http:\/\/[^/\s]+)\//.exec(err)?.[1]
    expect(base, err).toBeDefined()
    const scrape = async () => (await fetch(`${base}/probe?target=${ip}`)).text()
    const gauge = (text: string, id: string, status: string) =>
      sample(text, `chatmail_doctor_check{domain="${ip}",id="${id}",group="turn",status="${status}"}`)

    const before = await scrape()
    expect(gauge(before, 'turn.allocate.udp', 'ok'), before).toBe(1)
    expect(gauge(before, 'turn.allocate.tcp', 'ok')).toBe(1)

    await guestShell(d.host, 'systemctl stop coturn')
    const after = await scrape()
    const failing = after
      .split('\n')
      .filter(
        (l) => l.startsWith('chatmail_doctor_check{') && l.includes('group="turn"') && l.endsWith('status="fail"} 1'),
      )
    // Each root cause is said once: the other allocations may skip, naming the first failure.
    expect(gauge(after, 'turn.allocate.udp', 'fail'), after).toBe(1)
    expect(gauge(after, 'turn.allocate.udp', 'ok')).toBe(0)

    // The scraped failing series, held for 10 minutes, through the example rules in promtool.
    const series = failing.map((l) => `      - series: '${l.replace(/ 1$/, '')}'\n        values: '1x10'`)
    const test = [
      `rule_files:\n  - ${resolve('examples/monitoring/alerts.yml')}`,
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      ...series,
      '    alert_rule_test:',
      '      - eval_time: 7m',
      '        alertname: ChatmailTurnDown',
      '        exp_alerts:',
      '          - exp_labels:',
      '              severity: critical',
      `              domain: "${ip}"`,
      '            exp_annotations:',
      `              summary: "${ip}: TURN fails"`,
      `              description: "A TURN check (allocation, credentials, relaying) has failed on ${ip} for 5 minutes: calls between users behind NAT break. Is coturn running?"`,
    ].join('\n')
    await writeFile(join(d.dir, 'turn-down.test.yml'), `${test}\n`)
    const r = await new Promise<{ code: number; out: string }>((done) =>
      execFile(PROMTOOL as string, ['test', 'rules', 'turn-down.test.yml'], { cwd: d.dir }, (e, so, se) =>
        done({ code: e ? 1 : 0, out: `${so}${se}` }),
      ),
    )
    expect(r.out).toMatch(/SUCCESS/)
    expect(r.code).toBe(0)
  }, 300_000)
})
