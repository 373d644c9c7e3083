/** The host checks' parsing of the facts script's output, and their thresholds. */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  HOST_CLOCK_FAIL_MS,
  HOST_CLOCK_WARN_MS,
  judgeClock,
  judgeDisks,
  judgeMemory,
} from '../../src/doctor/checks/host.js'
import { HOST_UNITS, HostProbe, parseHostFacts } from '../../src/doctor/host-probe.js'

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
    const f = await new HostProbe('local', async () => local).facts()
    expect(Object.keys(f.units).sort()).toEqual([...HOST_UNITS].sort())
    expect(f.listening.find((l) => l.port === port)).toMatchObject({ proto: 'tcp', programs: [COMM] })
    expect(f.failed).not.toContain('x')
    expect(f.stale).toContain(`${BINARY} (${sleeper.pid}): ${join(dir, BINARY)}`)
  })
})
