/** The host checks' parsing of the facts script's output, and their thresholds. */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfigText } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import {
  HOST_CLOCK_FAIL_MS,
  HOST_CLOCK_WARN_MS,
  hostChecks,
  judgeClock,
  judgeDisks,
  judgeMemory,
} from '../../src/doctor/checks/host.js'
import { HostProbe, parseHostFacts } from '../../src/doctor/host-probe.js'
import type { CheckContext, CheckDef } from '../../src/doctor/model.js'
import { doctorOptions } from '../../src/doctor/options.js'
import { defaultServerConfig, describeServer } from '../../src/server/services.js'

/** The script's hex of a name or path (od -tx1); names from /proc/PID/comm end in a newline. */
const hex = (text: string) => Buffer.from(text).toString('hex')

const OUTPUT = `@clock
1767225605000000000
@units
dovecot loaded active
coturn loaded inactive
nginx not-found inactive
@failed
coturn.service
@listening
udp 0.0.0.0:3478 101
tcp 0.0.0.0:993 102
tcp 0.0.0.0:465 103
@sockets
42 101
7 102
9 103
8 103
@pids
42 ${hex('coturn.service')} ${hex('turnserver\n')}
7 ${hex('dovecot.service')} ${hex('dovecot\n')}
8 ${hex('postfix@-.service')} ${hex('master\n')}
9 ${hex('postfix@-.service')} ${hex('smtpd\n')}
@disk
/dev/sda1 10000000 9600000 400000 96% /
/dev/sda1 10000000 9600000 400000 96% /
tmpfs 4096 4096 0 100% /home/vmail
@mem
MemTotal:        2000000 kB
MemAvailable:     150000 kB
@stale
42 ${hex('turnserver\n')} ${hex('/usr/bin/turnserver')}
@deploy
2026-11-30T06:00:00.000Z by=root domain=x result=ok changed=3
@iroh
iroh-relay 0.35.0
${'a'.repeat(64)}
`

describe('parseHostFacts', () => {
  const f = parseHostFacts(OUTPUT, 1_767_225_600_000)
  it('reads every section', () => {
    expect(f.units).toEqual({
      dovecot: ['loaded', 'active'],
      coturn: ['loaded', 'inactive'],
      nginx: ['not-found', 'inactive'],
    })
    expect(f.failed).toEqual(['coturn.service'])
    expect(f.listening).toEqual([
      { proto: 'udp', port: 3478, programs: ['turnserver'], units: ['coturn'] },
      { proto: 'tcp', port: 993, programs: ['dovecot'], units: ['dovecot'] },
      // Debian runs postfix as the instance postfix@-.service: it counts as postfix.
      { proto: 'tcp', port: 465, programs: ['smtpd', 'master'], units: ['postfix'] },
    ])
    expect(f.disks.map((d) => d.mount)).toEqual(['/', '/home/vmail']) // one line per mount
    expect(f.mem).toEqual({ totalKb: 2_000_000, availKb: 150_000 })
    expect(f.clockSkewMs).toBe(5000)
    expect(f.stale).toEqual(['turnserver (42): /usr/bin/turnserver'])
    expect(f.lastDeploy).toMatch(/result=ok/)
    expect(f.iroh).toEqual({ version: 'iroh-relay 0.35.0', sha256: 'a'.repeat(64) })
  })

  it('judges the thresholds: a full mount fails, 7.5% memory warns', () => {
    expect(judgeDisks(f)).toMatchObject({ status: 'fail', detail: expect.stringContaining('/home/vmail 100% used') })
    expect(judgeDisks({ disks: [{ mount: '/', sizeKb: 1e7, availKb: 1.2e6, usedPct: 88 }] }).status).toBe('warn')
    expect(judgeDisks({ disks: [{ mount: '/', sizeKb: 1e7, availKb: 5e6, usedPct: 50 }] }).status).toBe('ok')
    expect(judgeMemory(f).status).toBe('warn')
    expect(judgeMemory({ mem: { totalKb: 1000, availKb: 20 } }).status).toBe('fail')
  })

  it('clock: ok under the warning threshold, warn, fail beyond', () => {
    expect(judgeClock(HOST_CLOCK_WARN_MS - 1).status).toBe('ok')
    expect(judgeClock(-HOST_CLOCK_WARN_MS).status).toBe('warn')
    expect(judgeClock(HOST_CLOCK_FAIL_MS)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/60\.0 s ahead/),
    })
    expect(judgeClock(-90_000).detail).toMatch(/90\.0 s behind/)
  })
})

// Any user names their processes (/proc/PID/comm, 15 bytes, newlines allowed) and their binaries'
// paths; ss -p and /proc print both raw. The probe's script runs here, under sh, as over SSH.
describe('the host probe on this machine: host-chosen names cannot forge its report (issue 23 item 10b)', () => {
  const COMM = 'n\n@units\nfake' // a listener's name: a section header and a unit
  const BINARY = 'sl\n@failed\nx' // a deleted binary's name (and so its process's)
  let dir: string
  let listener: ChildProcess
  let sleeper: ChildProcess
  let port: number
  const local = {
    exec: (command: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile('sh', ['-c', command], { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
        )
      }),
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'host-probe-'))
    listener = spawn(
      process.execPath,
      [
        '-e',
        `require('fs').writeFileSync('/proc/self/comm', ${JSON.stringify(COMM)});` +
          "const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    port = await new Promise<number>((resolve) => listener.stdout?.once('data', (d) => resolve(Number(String(d)))))
    const binary = join(dir, BINARY)
    copyFileSync('/bin/sleep', binary)
    sleeper = spawn(binary, ['600'], { stdio: 'ignore' })
    await new Promise((resolve) => sleeper.once('spawn', resolve))
    unlinkSync(binary)
  })
  afterAll(() => {
    listener?.kill()
    sleeper?.kill()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a listener named with a newline and "@units": its name as it is, the units section untouched', async () => {
    const server = describeServer(defaultServerConfig('chat.example.org'))
    const f = await new HostProbe('local', async () => local).facts(server)
    expect(Object.keys(f.units).sort()).toEqual([...server.units].sort())
    expect(f.listening.find((l) => l.port === port)).toMatchObject({ proto: 'tcp', programs: [COMM] })
    expect(f.failed).not.toContain('x')
    expect(f.stale).toContain(`${BINARY} (${sleeper.pid}): ${join(dir, BINARY)}`)
  })
})

// The host checks expect what the server description (src/server/services.ts) says runs on a host
// of this config: the configured ports, and every unit the stack installs (issue 24, the drift bugs).
describe('host.units and host.ports expect what the config deploys', () => {
  const config = (extra = '', domain = 'chat.example.org') =>
    parseConfigText(`domain = "${domain}"\n[turn]\nsecret = "0123456789abcdef0123"\n${extra}`, 'cm.toml')
  const facts = (units: string, listening: [string, number, string, string][]) => {
    const lines = listening.map(([proto, port], i) => `${proto} 0.0.0.0:${port} ${100 + i}`)
    const sockets = listening.map((_, i) => `${10 + i} ${100 + i}`)
    const pids = listening.map(([, , unit, comm], i) => `${10 + i} ${hex(`${unit}.service`)} ${hex(`${comm}\n`)}`)
    return `@clock\n1767225600000000000\n@units\n${units}\n@failed\n@listening\n${lines.join('\n')}\n@sockets\n${sockets.join('\n')}\n@pids\n${pids.join('\n')}\n`
  }
  async function run(id: string, cfg: Config, output: string) {
    const sent: string[] = []
    const probe = new HostProbe('root@host', async () => ({
      exec: async (command: string) => {
        sent.push(command)
        return { code: 0, stdout: output, stderr: '' }
      },
    }))
    const options = { ...doctorOptions({ domain: cfg.domain, insecure: false, timeoutMs: 5000 }, cfg), host: probe }
    const check = hostChecks.find((c) => c.id === id) as CheckDef
    const ctx = { options, findings: {}, signal: new AbortController().signal, timeoutMs: 5000 } as CheckContext
    return { outcome: await check.run(ctx), script: sent.join('\n') }
  }
  const running = (...units: string[]) => units.map((u) => `${u} loaded active`).join('\n')

  it('host.ports: the configured TURN, TURN-over-TLS, iroh-relay and IMAP ports, not the default ones', async () => {
    const cfg = config('port = 3479\ntls_port = 5350\n[iroh]\nport = 3341\n[imap]\nport = 994\n')
    const listening: [string, number, string, string][] = [
      ['tcp', 143, 'dovecot', 'dovecot'],
      ['tcp', 994, 'dovecot', 'imap-login'],
      ['udp', 3479, 'coturn', 'turnserver'],
      ['tcp', 3479, 'coturn', 'turnserver'],
      ['tcp', 5350, 'coturn', 'turnserver'],
      ['tcp', 3341, 'iroh-relay', 'iroh-relay'],
    ]
    const ok = await run('host.ports', cfg, facts(running('dovecot', 'coturn', 'iroh-relay'), listening))
    expect(ok.outcome).toMatchObject({ status: 'ok', detail: '6 ports held by their programs' })
    // The same host with coturn on the default ports: the configured ones are not held.
    const moved = listening.map(([p, port, u, c]): [string, number, string, string] => [
      p,
      port === 3479 ? 3478 : port,
      u,
      c,
    ])
    const bad = await run('host.ports', cfg, facts(running('dovecot', 'coturn', 'iroh-relay'), moved))
    expect(bad.outcome.status).toBe('fail')
    expect(bad.outcome.detail).toBe('nothing listens on tcp 3479 (coturn); nothing listens on udp 3479 (coturn)')
  })

  it('host.units: asks about and judges chatmail-accounts and opendkim too', async () => {
    const units = `${running('dovecot', 'postfix', 'chatmail-filter')}\nchatmail-accounts loaded inactive\nopendkim loaded failed`
    const r = await run('host.units', config(), facts(units, []))
    expect(r.script).toMatch(/^HOST_UNITS='[^']*\bchatmail-accounts\b[^']*\bopendkim\b[^']*'$/m)
    expect(r.outcome.status).toBe('fail')
    expect(r.outcome.detail).toBe('chatmail-accounts is inactive; opendkim is failed')
  })

  it('host.units: an IP-only server runs no opendkim, so it is not asked about', async () => {
    const r = await run('host.units', config('', '203.0.113.5'), facts(running('dovecot', 'chatmail-accounts'), []))
    expect(r.script).toMatch(/^HOST_UNITS='[^']*\bchatmail-accounts\b[^']*'$/m)
    expect(r.script).not.toMatch(/^HOST_UNITS='[^']*\bopendkim\b/m)
    expect(r.outcome).toMatchObject({ status: 'ok', detail: 'dovecot, chatmail-accounts active; no failed units' })
  })
})
