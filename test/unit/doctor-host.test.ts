/** The host checks' parsing of the facts script's output, and their thresholds. */
import { describe, expect, it } from 'vitest'
import {
  HOST_CLOCK_FAIL_MS,
  HOST_CLOCK_WARN_MS,
  judgeClock,
  judgeDisks,
  judgeMemory,
} from '../../src/doctor/checks/host.js'
import { parseHostFacts } from '../../src/doctor/host-probe.js'

const OUTPUT = `@clock
1767225605000000000
@units
dovecot loaded active
coturn loaded inactive
nginx not-found inactive
@failed
coturn.service
@listening
udp   UNCONN 0      0            0.0.0.0:3478       0.0.0.0:*    users:(("turnserver",pid=42,fd=7))
tcp   LISTEN 0      100          0.0.0.0:993        0.0.0.0:*    users:(("dovecot",pid=7,fd=30))
tcp   LISTEN 0      100          0.0.0.0:465        0.0.0.0:*    users:(("smtpd",pid=9,fd=6),("master",pid=8,fd=20))
@pids
42 coturn.service
7 dovecot.service
8 postfix@-.service
9 postfix@-.service
@disk
/dev/sda1 10000000 9600000 400000 96% /
/dev/sda1 10000000 9600000 400000 96% /
tmpfs 4096 4096 0 100% /home/vmail
@mem
MemTotal:        2000000 kB
MemAvailable:     150000 kB
@stale
turnserver (42): /usr/bin/turnserver
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
