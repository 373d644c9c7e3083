/**
 * --prometheus FILE: the text is checked by a real parser, Prometheus' own `promtool check metrics`
 * (Debian package prometheus), and the built CLI writes it atomically, mode 0644.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DoctorReport } from '../../src/doctor/model.js'
import { toOpenMetrics } from '../../src/doctor/report/prometheus.js'
import { runCli } from '../helpers/cli.js'

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))

/** promtool's verdict: its exit code and what it printed (lint problems, parse errors). */
function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = execFile(PROMTOOL as string, ['check', 'metrics'], (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` })
    })
    child.stdin?.end(text)
  })
}

const report: DoctorReport = {
  status: 'fail',
  durationMs: 1234,
  checks: [
    { id: 'imap.tls', group: 'imap', title: 'IMAP certificate', status: 'ok', detail: 'fine', durationMs: 12 },
    { id: 'turn.allocate.tcp', group: 'turn', title: 'x', status: 'skip', detail: 'UDP only', durationMs: 0 },
    {
      id: 'relay.ping',
      group: 'relay',
      title: 'y',
      status: 'fail',
      detail: 'down',
      hint: 'start it',
      durationMs: 5000,
    },
  ],
}

describe.skipIf(!PROMTOOL)(
  `OpenMetrics for node_exporter${PROMTOOL ? '' : ' (skipped: promtool not installed; bash scripts/test-deps.sh)'}`,
  () => {
    let dir: string
    let closed: Server | undefined
    let closedPort: number
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'chatmail-prom-'))
      // A port that was just free: nothing listens, so imap.tls fails quickly.
      closed = createServer()
      await new Promise<void>((r) => closed?.listen(0, '127.0.0.1', r))
      closedPort = (closed.address() as { port: number }).port
      await new Promise((r) => closed?.close(r))
    })
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it('promtool accepts the text without a lint problem; one gauge per check and status', async () => {
      const text = toOpenMetrics(report, 'chat.example.org', 1_767_225_600_000)
      const r = await promtool(text)
      expect(r.output).toBe('')
      expect(r.code).toBe(0)
      expect(text).toContain(
        'chatmail_doctor_check{domain="chat.example.org",id="relay.ping",group="relay",status="fail"} 1',
      )
      expect(text).toContain(
        'chatmail_doctor_check{domain="chat.example.org",id="relay.ping",group="relay",status="ok"} 0',
      )
      expect(text).toContain(
        'chatmail_doctor_check_duration_seconds{domain="chat.example.org",id="relay.ping",group="relay"} 5',
      )
      expect(text).toContain('chatmail_doctor_status{domain="chat.example.org",status="fail"} 1')
      expect(text).toContain('chatmail_doctor_checks{domain="chat.example.org",status="skip"} 1')
      expect(text).toContain('chatmail_doctor_checks{domain="chat.example.org",status="warn"} 0')
      expect(text).toContain('chatmail_doctor_last_run_timestamp_seconds{domain="chat.example.org"} 1767225600')
      expect(text.endsWith('# EOF\n')).toBe(true)
      expect(text.match(/^chatmail_doctor_check\{/gm)).toHaveLength(3 * 4)
    })

    it('promtool notices a broken file (the parser is real): a label value with a raw quote', async () => {
      const broken = toOpenMetrics(report, 'x').replace('domain="x"', 'domain="x"y"')
      expect((await promtool(broken)).code).not.toBe(0)
    })

    it('the CLI writes the file atomically, 0644, replacing the last one; promtool accepts it', async () => {
      const file = join(dir, 'chatmail.prom')
      const args = ['doctor', '127.0.0.1', '--only', 'imap.tls', '--imap-port', String(closedPort), '--timeout', '2']
      const first = await runCli([...args, '--prometheus', file], { cwd: dir, env: { CHATMAIL_USER: '' } })
      expect(first.code, first.stderr).toBe(1)
      const text = await readFile(file, 'utf8')
      expect(text).toContain('chatmail_doctor_check{domain="127.0.0.1",id="imap.tls",group="imap",status="fail"} 1')
      expect(await promtool(text)).toEqual({ code: 0, output: '' })
      expect((await stat(file)).mode & 0o777).toBe(0o644)
      const second = await runCli([...args, '--prometheus', file], { cwd: dir, env: { CHATMAIL_USER: '' } })
      expect(second.code).toBe(1)
      expect(await readdir(dir)).toEqual(['chatmail.prom']) // no temporary file left behind
    })

    it('an unwritable path: exit 3 with one line naming the file', async () => {
      const r = await runCli(
        [
          'doctor',
          '127.0.0.1',
          '--only',
          'imap.tls',
          '--imap-port',
          String(closedPort),
          '--timeout',
          '1',
          '--prometheus',
          join(dir, 'no', 'such', 'x.prom'),
        ],
        { cwd: dir, env: { CHATMAIL_USER: '' } },
      )
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/Prometheus file/)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    })
  },
)
