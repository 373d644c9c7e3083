/**
 * The built CLI says a root cause once, first, with the fix that fits; what depends on it skips
 * naming it. Each run is in its own network namespace (`unshare --net`, loopback only): nothing
 * listens on 127.0.0.1 there, and no DNS query leaves the machine (the resolver in resolv.conf is
 * unreachable, so a name under .invalid fails at once, as it does for an operator's typo).
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliRun, runCli } from '../helpers/cli.js'

const NETNS = ['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh']

function netnsUnavailable(): string | undefined {
  try {
    execFileSync(NETNS[0] as string, [...NETNS.slice(1), 'true'], { stdio: 'ignore' })
    return undefined
  } catch (err) {
    return `cannot make a network namespace (needs root, unshare, iproute2): ${(err as Error).message}`
  }
}
const unavailable = netnsUnavailable()

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chatmail-doctor-cause-'))
})
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

const doctor = (args: string[]): Promise<CliRun> =>
  runCli(['doctor', ...args, '--timeout', '5'], {
    cwd: dir,
    env: { CHATMAIL_USER: 'doctor@x.invalid', CHATMAIL_PASSWORD: 'not-used-123' },
    wrap: NETNS,
    timeoutMs: 60_000,
  })

/** The report's check lines (stdout), without the fix lines and the summary. */
const checkLines = (out: string) => out.split('\n').filter((l) => /^(ok|warn|FAIL|skip) {1,3}\S/.test(l))
const line = (out: string, id: string) => checkLines(out).find((l) => l.split(/\s+/)[1] === id) ?? ''

describe.skipIf(unavailable)(
  `the doctor names the root cause first${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    it('a name that does not resolve: one failure, first, with the DNS fix; every check that needs the name skips naming it', async () => {
      const r = await doctor(['nonexistent.invalid'])
      expect(r.code, r.stderr).toBe(1)
      const lines = checkLines(r.stdout)
      expect(lines[0]).toMatch(/^FAIL {2}imap\.tls {2}.*nonexistent\.invalid/)
      expect(r.stdout.split('\n')[1]).toMatch(
        /fix: nonexistent\.invalid does not resolve: check its DNS A\/AAAA records/,
      )
      // Said once: no other failure, and no fix that does not fit a name that does not resolve.
      expect(lines.filter((l) => l.startsWith('FAIL'))).toHaveLength(1)
      expect(r.stdout).not.toMatch(/start dovecot|open TCP|nginx must answer/)
      for (const id of ['imap.login', 'tls.imap', 'tls.submission', 'tls.https', 'mail.autoconfig', 'mail.signup']) {
        expect(line(r.stdout, id)).toMatch(
          /^skip {2}\S+ {2}needs imap\.tls, which failed: nonexistent\.invalid does not resolve$/,
        )
      }
      expect(line(r.stdout, 'relay.ping')).toMatch(/needs imap\.tls, which failed$/)
      expect(r.stdout).toMatch(/\nfirst: imap\.tls: nonexistent\.invalid does not resolve/)
      // Progress on stderr follows the check order too (not every skip first).
      expect(checkLines(r.stderr).map((l) => l.split(/\s+/)[1])).toEqual(lines.map((l) => l.split(/\s+/)[1]))
    })

    it('--json: the same verdicts, the contract shape; exit 1', async () => {
      const r = await doctor(['nonexistent.invalid', '--json'])
      expect(r.code).toBe(1)
      const report = JSON.parse(r.stdout) as { status: string; checks: { id: string; status: string; hint: unknown }[] }
      expect(report.status).toBe('fail')
      expect(report.checks.filter((c) => c.status === 'fail').map((c) => c.id)).toEqual(['imap.tls'])
      for (const c of report.checks)
        expect(Object.keys(c)).toEqual(['id', 'group', 'title', 'status', 'detail', 'hint', 'durationMs'])
    })

    it('a closed IMAP port: one failure naming it first; the checks on that port skip naming it', async () => {
      const r = await doctor(['127.0.0.1'])
      expect(r.code, r.stderr).toBe(1)
      const lines = checkLines(r.stdout)
      expect(lines[0]).toMatch(/^FAIL {2}imap\.tls {2}.*127\.0\.0\.1:993.*ECONNREFUSED/)
      expect(r.stdout.split('\n')[1]).toMatch(/fix: nothing listens on that port: start dovecot/)
      for (const id of ['imap.login', 'tls.imap']) {
        expect(line(r.stdout, id)).toMatch(
          /^skip {2}\S+ {2}needs imap\.tls, which failed: nothing answers on 127\.0\.0\.1:993$/,
        )
      }
      expect(line(r.stdout, 'metadata.turn')).toMatch(/needs imap\.tls, which failed$/)
      // Submission is closed on both ports: one failure for it, the others skip naming it.
      expect(line(r.stdout, 'tls.submission')).toMatch(/^FAIL/)
      for (const id of ['tls.submission-starttls', 'mail.submission']) {
        expect(line(r.stdout, id)).toMatch(
          /needs tls\.submission, which failed: nothing answers SMTP submission on 127\.0\.0\.1/,
        )
      }
      expect(lines.filter((l) => l.startsWith('FAIL')).map((l) => l.split(/\s+/)[1])).toEqual([
        'imap.tls',
        'tls.submission',
      ])
      expect(r.stdout).toMatch(
        /\nfirst: imap\.tls: nothing listens on that port: start dovecot .*\(then the 1 other failure above\)/,
      )
    })
  },
)
