/**
 * `chatmail probe` (issue 30, item 2), the built CLI as operators run it, against real servers on
 * loopback: a dovecot, a hostile IMAP server, silent servers that accept and never answer. Its
 * answers are read by Prometheus' own parser (`promtool check metrics`). It probes only the names
 * of its targets file, never runs two probes of one target at once, answers a recent result
 * again, keeps to --max-concurrent, and survives a hostile target.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, runCli } from '../helpers/cli.js'
import { type Dovecot, startDovecot } from '../helpers/dovecot.js'
import { type HostileImap, startHostileImap } from '../helpers/hostile-imap.js'

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))
const READ_BOUND = 8 * 1024 * 1024

function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = execFile(PROMTOOL as string, ['check', 'metrics'], (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` })
    })
    child.stdin?.end(text)
  })
}

/** Accepts connections and never says a word; remembers when each was open. */
interface Silent {
  port: number
  spans: Array<{ closed: boolean }>
  server: Server
}

async function silentServer(): Promise<Silent> {
  const spans: Silent['spans'] = []
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    const span = { closed: false }
    spans.push(span)
    sockets.add(s)
    s.resume() // read (and drop) what the client sends, so its close is seen
    s.on('error', () => undefined)
    s.on('close', () => {
      span.closed = true
      sockets.delete(s)
    })
  })
  server.on('close', () => {
    for (const s of sockets) s.destroy()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { port: (server.address() as { port: number }).port, spans, server }
}

interface Running {
  child: ChildProcess
  base: string
  stderr: () => string
}

async function startProbe(targets: string, extra: string[], cwd: string): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'probe', '--targets', targets, '--listen', '127.0.0.1:0', ...extra], {
    cwd,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  for (let i = 0; i < 200 && !/listening on/.test(err) && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 50))
  }
  const m = /listening on (http:\/\/[^/\s]+)\//.exec(err)
  if (!m) throw new Error(`the prober did not start: ${err}`)
  return { child, base: m[1] as string, stderr: () => err }
}

const get = async (url: string, init?: RequestInit) => {
  const r = await fetch(url, init)
  return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() }
}

/** The value of one sample line (exact name and labels), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe.skipIf(!PROMTOOL)(
  `chatmail probe${PROMTOOL ? '' : ' (skipped: promtool not installed; bash scripts/test-deps.sh)'}`,
  () => {
    let dir: string
    let dovecot: Dovecot
    let hostile: HostileImap
    let silent: Silent
    let slowA: Silent
    let slowB: Silent
    let probe: Running
    let serial: Running

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'chatmail-probe-'))
      dovecot = await startDovecot({ cert: { name: 'localhost', altNames: ['IP:127.0.0.1'] } })
      hostile = await startHostileImap({ kind: 'endless-greeting' })
      ;[silent, slowA, slowB] = [await silentServer(), await silentServer(), await silentServer()]
      await writeFile(join(dir, 'ca.pem'), dovecot.certPem)
      await writeFile(join(dir, 'hostile-ca.pem'), hostile.certPem)
      await writeFile(join(dir, 'password'), `${dovecot.password}\n`)
      await chmod(join(dir, 'password'), 0o600)
      const silentTarget = (name: string, s: Silent) =>
        `[[target]]\nname = "${name}"\nimap_host = "127.0.0.1"\nimap_port = ${s.port}\nonly = ["imap.tls"]\ntimeout = 1.5\n`
      await writeFile(
        join(dir, 'probe.toml'),
        [
          `[[target]]\nname = "127.0.0.1"\nimap_port = ${dovecot.imapsPort}\nuser = "${dovecot.user}"`,
          'password_file = "password"\nca = "ca.pem"\nonly = ["imap.tls", "imap.login"]\n',
          `[[target]]\nname = "hostile.test"\nimap_host = "127.0.0.1"\nimap_port = ${hostile.port}`,
          'ca = "hostile-ca.pem"\nuser = "a@hostile.test"\npassword_file = "password"\nonly = ["imap"]\n',
          silentTarget('silent.test', silent),
        ].join('\n'),
      )
      await writeFile(join(dir, 'slow.toml'), [silentTarget('a.test', slowA), silentTarget('b.test', slowB)].join('\n'))
      probe = await startProbe(join(dir, 'probe.toml'), ['--min-interval', '3600'], dir)
      serial = await startProbe(join(dir, 'slow.toml'), ['--max-concurrent', '1', '--min-interval', '0'], dir)
    }, 60_000)

    afterAll(async () => {
      for (const p of [probe, serial]) {
        if (p && p.child.exitCode === null) {
          p.child.kill('SIGTERM')
          await once(p.child, 'exit')
        }
      }
      await Promise.all([dovecot?.stop(), hostile?.stop()])
      for (const s of [silent, slowA, slowB]) s?.server.close()
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it('/probe of a healthy dovecot: one gauge per check and status, totals, valid for promtool', async () => {
      const r = await get(`${probe.base}/probe?target=127.0.0.1`)
      expect(r.status).toBe(200)
      expect(r.type).toMatch(/^text\/plain; version=0.0.4/)
      expect(await promtool(r.text)).toEqual({ code: 0, output: '' })
      const ok = (id: string, group: string) =>
        sample(r.text, `chatmail_doctor_check{domain="127.0.0.1",id="${id}",group="${group}",status="ok"}`)
      expect(ok('imap.tls', 'imap')).toBe(1)
      expect(ok('imap.login', 'imap')).toBe(1)
      expect(sample(r.text, 'chatmail_doctor_checks{domain="127.0.0.1",status="ok"}')).toBe(2)
      expect(sample(r.text, 'chatmail_doctor_checks{domain="127.0.0.1",status="fail"}')).toBe(0)
      expect(sample(r.text, 'chatmail_doctor_status{domain="127.0.0.1",status="ok"}')).toBe(1)
      expect(r.text).toMatch(
        /^chatmail_doctor_check_duration_seconds\{domain="127.0.0.1",id="imap.login",group="imap"\} /m,
      )
    })

    it('refuses names outside its targets file (no open proxy), and anything but GET /probe?target=NAME', async () => {
      const before = silent.spans.length
      for (const name of ['example.org', '127.0.0.2', '127.0.0.1:25', 'silent.test.']) {
        const r = await get(`${probe.base}/probe?target=${encodeURIComponent(name)}`)
        expect(r.status, name).toBe(403)
        expect(r.text).toMatch(/not a target/)
      }
      expect((await get(`${probe.base}/probe`)).status).toBe(400)
      expect((await get(`${probe.base}/probe?target=silent.test&target=127.0.0.1`)).status).toBe(400)
      expect((await get(`${probe.base}/probe?target=silent.test`, { method: 'POST' })).status).toBe(405)
      expect((await get(`${probe.base}/nothing`)).status).toBe(404)
      expect((await get(`${probe.base}/probe?target=${'x'.repeat(2000)}`)).status).toBe(414)
      expect(silent.spans.length).toBe(before)
      const m = await get(`${probe.base}/metrics`)
      expect(sample(m.text, 'chatmail_probe_requests_total{path="/probe",code="403"}')).toBe(4)
    })

    it('a hostile server: the probe fails the check on the read cap, having read little, and the prober lives on', async () => {
      const r = await get(`${probe.base}/probe?target=hostile.test`)
      expect(r.status).toBe(200)
      expect(
        sample(r.text, 'chatmail_doctor_check{domain="hostile.test",id="imap.login",group="imap",status="fail"}'),
      ).toBe(1)
      expect(await promtool(r.text)).toEqual({ code: 0, output: '' })
      expect(hostile.bytesSent()).toBeLessThan(READ_BOUND)
      expect((await get(`${probe.base}/metrics`)).status).toBe(200)
    })

    it('never two probes of one target at once; a recent result is answered again without a run', async () => {
      const answers = await Promise.all(Array.from({ length: 5 }, () => get(`${probe.base}/probe?target=silent.test`)))
      for (const a of answers) {
        expect(a.status).toBe(200)
        expect(
          sample(a.text, 'chatmail_doctor_check{domain="silent.test",id="imap.tls",group="imap",status="fail"}'),
        ).toBe(1)
      }
      expect(silent.spans).toHaveLength(1) // five scrapes, one connection: one doctor run
      const again = await get(`${probe.base}/probe?target=silent.test`)
      expect(again.text).toBe(answers[0]?.text) // the same run, its timestamp included
      expect(silent.spans).toHaveLength(1)
      const m = await get(`${probe.base}/metrics`)
      expect(await promtool(m.text)).toEqual({ code: 0, output: '' })
      expect(sample(m.text, 'chatmail_probe_runs_total{target="silent.test",status="fail"}')).toBe(1)
      const reused = ['running', 'recent']
        .map((why) => sample(m.text, `chatmail_probe_reused_total{target="silent.test",why="${why}"}`) ?? 0)
        .reduce((a, b) => a + b, 0)
      expect(reused).toBe(5)
      expect(sample(m.text, 'chatmail_probe_targets')).toBe(3)
    })

    it('--max-concurrent 1: a second target waits while the first is checked', async () => {
      const a = get(`${serial.base}/probe?target=a.test`)
      const b = get(`${serial.base}/probe?target=b.test`)
      let seen: { running?: number; waiting?: number } = {}
      for (let i = 0; i < 100 && seen.waiting !== 1; i++) {
        const m = (await get(`${serial.base}/metrics`)).text
        seen = { running: sample(m, 'chatmail_probe_running'), waiting: sample(m, 'chatmail_probe_waiting') }
        if (seen.waiting !== 1) await new Promise((r) => setTimeout(r, 20))
      }
      expect(seen).toEqual({ running: 1, waiting: 1 })
      // One of the two silent servers has been reached, the other not yet.
      expect(slowA.spans.length + slowB.spans.length).toBe(1)
      expect((await Promise.all([a, b])).map((r) => r.status)).toEqual([200, 200])
      expect([slowA.spans.length, slowB.spans.length]).toEqual([1, 1])
      // --min-interval 0: the next scrape runs the doctor again.
      await get(`${serial.base}/probe?target=a.test`)
      expect(slowA.spans).toHaveLength(2)
    })

    it('a wrong targets file: exit 3, one line naming the file and the key', async () => {
      const bad = join(dir, 'bad.toml')
      await writeFile(bad, '[[target]]\nname = "chat.example.org"\nport = 993\n')
      const r = await runCli(['probe', '--targets', bad, '--listen', '127.0.0.1:0'], { cwd: dir })
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/bad\.toml: unknown key "target\[0\]\.port"/)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      await writeFile(bad, '[[target]]\nname = "chat.example.org"\ntimeout = 0\n')
      expect((await runCli(['probe', '--targets', bad], { cwd: dir })).stderr).toMatch(/timeout/)
      const missing = await runCli(['probe', '--targets', join(dir, 'none.toml')], { cwd: dir })
      expect(missing.code).toBe(3)
      const listen = await runCli(['probe', '--targets', bad, '--listen', 'chat.example.org:80'], { cwd: dir })
      expect(listen.code).toBe(2)
    })

    it('SIGTERM stops it with exit 0', async () => {
      const p = await startProbe(join(dir, 'slow.toml'), [], dir)
      p.child.kill('SIGTERM')
      const [code] = await once(p.child, 'exit')
      expect(code).toBe(0)
    })
  },
)
