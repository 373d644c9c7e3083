/**
 * The host checks and the CI example against a real Debian host (scripts/testhost.sh, index 30):
 * examples/ci/deploy-and-check.sh deploys and gates on `doctor --strict --junit --ssh` exactly as
 * the GitHub and GitLab jobs run it; then `doctor --ssh --only host` is all ok, and one fault at a
 * time inside the host — coturn stopped, a full file system (a small tmpfs over the mail
 * directory), a skewed clock (libfaketime for every new process), a replaced binary — is caught by
 * its id. The mail group on the same host (moved here from doctor-mail.test.ts, which needed a host
 * of its own): each verdict compared with what the server really does, read independently here
 * (XCHATMAIL, autoconfig, /new, a plaintext message refused), then faults — a wrong password,
 * mail accepted but never delivered, no account. Run under
 * `flock /tmp/chatmail-e2e-doctor-host.test.ts.lock`.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { ImapFlow } from 'imapflow'
import SMTPConnection from 'nodemailer/lib/smtp-connection'
import { parse } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BIN, runCli } from '../helpers/cli.js'
import { checkOf, type DoctorJsonRun, doctorJson, type JsonCheck } from '../helpers/doctor-contract.js'
import { makeCert } from '../helpers/dovecot.js'
import { type StandInMirror, serveStandInMirror } from '../helpers/standin-tarball.js'
import { guestShell, startTestHost, stopTestHost, type TestHost, testHostSkipReason } from '../helpers/testhost.js'

const OPTS = { name: 'th-dchk-host', index: 30 }
const HOST_IDS = [
  'host.units',
  'host.ports',
  'host.disk',
  'host.memory',
  'host.clock',
  'host.restart-needed',
  'host.version',
]
const MAIL_IDS = [
  'imap.xchatmail',
  'mail.autoconfig',
  'mail.signup',
  'mail.submission',
  'mail.roundtrip',
  'mail.rejects-unencrypted',
]
const SCRIPT = resolve('examples/ci/deploy-and-check.sh')
const skip = testHostSkipReason()

describe.skipIf(skip)(`host checks and the CI example on a real host${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let host: TestHost
  let dir: string
  let mirror: StandInMirror | undefined
  /** The certificate the test places on the host (before the deploy, which keeps it): the doctor's --ca. */
  let caFile = ''

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chatmail-doctor-host-'))
    host = await startTestHost(OPTS)
    mirror = await serveStandInMirror(dir, host.runnerIp)
    const init = await runCli(['init', host.host], { cwd: dir })
    expect(init.code, init.stderr).toBe(0)
  }, 300_000)

  afterAll(async () => {
    mirror?.close()
    await stopTestHost(OPTS).catch(() => {})
  }, 120_000)

  const hostDoctor = async (...extra: string[]): Promise<DoctorJsonRun> => {
    const r = await runCli(
      [
        'doctor',
        '--ssh',
        `root@${host.host}`,
        '-i',
        host.keyFile,
        '--known-hosts',
        host.knownHostsFile,
        '--only',
        'host',
        '--json',
        '--timeout',
        '20',
        ...extra,
      ],
      { cwd: dir, timeoutMs: 120_000 },
    )
    try {
      return { ...r, report: JSON.parse(r.stdout) }
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
    }
  }
  const show = (r: DoctorJsonRun) => r.report.checks.map((c) => `${c.id}: ${c.status} — ${c.detail}`).join('\n')

  test('examples/ci/deploy-and-check.sh deploys and passes doctor --strict --junit --ssh; nothing secret printed', async () => {
    const key = readFileSync(host.keyFile, 'utf8')
    const config = readFileSync(join(dir, 'chatmail.toml'), 'utf8')
    const turnSecret = /^secret = "([^"]+)"/m.exec(config)?.[1] as string
    const m = mirror as StandInMirror
    // An IP-only test server has a self-signed certificate; a staging server would have an ACME one.
    // The test places its own before the deploy (which keeps a valid certificate) and passes it as
    // --ca through DOCTOR_ARGS. Test-only: the key is 0644 because coturn's group does not exist yet.
    const made = makeCert(dir, {
      name: host.host,
      altNames: [`IP:${host.host}`],
      notAfter: new Date(Date.now() + 365 * 86_400_000),
    })
    caFile = made.cert
    const b64 = (f: string) => readFileSync(f).toString('base64')
    await guestShell(
      host,
      `mkdir -p /etc/chatmail/tls && echo ${b64(made.cert)} | base64 -d > /etc/chatmail/tls/fullchain.pem && echo ${b64(made.key)} | base64 -d > /etc/chatmail/tls/privkey.pem && chmod 644 /etc/chatmail/tls/*.pem`,
    )
    const r = await new Promise<{ code: number; out: string }>((done) => {
      execFile(
        'bash',
        [SCRIPT],
        {
          cwd: dir,
          timeout: 900_000,
          maxBuffer: 16 << 20,
          env: {
            ...process.env,
            NO_COLOR: '1',
            STAGING_DESTINATION: `root@${host.host}`,
            STAGING_SSH_KEY: key,
            STAGING_KNOWN_HOSTS: readFileSync(host.knownHostsFile, 'utf8'),
            CHATMAIL: `${process.execPath} ${BIN}`,
            CHATMAIL_CONFIG: join(dir, 'chatmail.toml'),
            REPORT_DIR: join(dir, 'reports'),
            DEPLOY_ARGS: `--iroh-relay-source ${m.source} --iroh-relay-sha256 ${m.sha256}`,
            // --timeout: the suite runs two e2e files at once on 2 cores; a check's 5 s default is for a
            // server, not for a test host sharing the runner with another deploy (CI, 2026-11-30: host.units
            // over SSH took longer than 5 s right after the deploy).
            DOCTOR_ARGS: `--ca ${caFile} --timeout 20`,
          },
        },
        (err, stdout, stderr) =>
          done({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, out: stdout + stderr }),
      )
    })
    const doctor = JSON.parse(readFileSync(join(dir, 'reports', 'doctor.json'), 'utf8')) as DoctorJsonRun['report']
    const notOk = doctor.checks.filter((c) => c.status !== 'ok' && c.status !== 'skip')
    expect(notOk, `${r.out}\n${JSON.stringify(notOk, null, 1)}`).toEqual([])
    expect(r.code, r.out).toBe(0)
    expect(doctor.checks.filter((c) => c.group === 'host').map((c) => [c.id, c.status])).toEqual(
      HOST_IDS.map((id) => [id, 'ok']),
    )
    const xml = readFileSync(join(dir, 'reports', 'doctor.xml'), 'utf8')
    expect(xml).toContain('<testcase classname="host" name="host.units"')
    expect(xml).not.toContain('<failure')
    // Nothing secret in what the job prints or publishes.
    const published = [r.out, xml, readFileSync(join(dir, 'reports', 'deploy.json'), 'utf8')].join('\n')
    expect(published).not.toContain(key.split('\n')[1] as string)
    expect(published).not.toContain(turnSecret)
  }, 900_000)

  test('doctor --ssh --only host: every host check ok, with what it saw', async () => {
    const r = await hostDoctor()
    expect(r.code, show(r)).toBe(0)
    expect(r.report.checks.map((c) => [c.id, c.status])).toEqual(HOST_IDS.map((id) => [id, 'ok']))
    expect(checkOf(r, 'host.units').detail).toMatch(/coturn.*active/)
    expect(checkOf(r, 'host.version').detail).toMatch(/last deploy .*iroh-relay/)
  }, 180_000)

  test('coturn stopped: host.units and host.ports fail naming coturn', async () => {
    await guestShell(host, 'systemctl stop coturn')
    try {
      const r = await hostDoctor()
      expect(r.code).toBe(1)
      expect(checkOf(r, 'host.units')).toMatchObject({
        status: 'fail',
        detail: expect.stringContaining('coturn is inactive'),
      })
      expect(checkOf(r, 'host.units').hint).toMatch(/systemctl status coturn/)
      expect(checkOf(r, 'host.ports')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/3478 \(coturn\)/),
      })
      expect(checkOf(r, 'host.disk').status).toBe('ok')
    } finally {
      await guestShell(host, 'systemctl start coturn')
    }
  }, 180_000)

  test('a full file system under the mail directory: host.disk fails naming it', async () => {
    await guestShell(
      host,
      'mount -t tmpfs -o size=4m chatmail-fill /home/vmail && (dd if=/dev/zero of=/home/vmail/fill bs=64k 2>/dev/null || true)',
    )
    try {
      const r = await hostDoctor()
      expect(r.code).toBe(1)
      expect(checkOf(r, 'host.disk')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/\/home\/vmail 100% used/),
      })
      expect(checkOf(r, 'host.units').status).toBe('ok')
    } finally {
      await guestShell(host, 'umount /home/vmail')
    }
  }, 180_000)

  test('a skewed clock inside the host (libfaketime in every SSH session): host.clock fails', async () => {
    await guestShell(host, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null')
    const lib = (await guestShell(host, "dpkg -L libfaketime | grep '/libfaketime.so.1$'")).trim()
    expect(lib).toMatch(/libfaketime\.so\.1$/)
    // pam_env gives every new SSH session (not sshd itself) the skewed clock: what the doctor's
    // read-only script sees is what the host's processes see.
    await guestShell(
      host,
      `cp /etc/environment /etc/environment.dchk && printf 'LD_PRELOAD=${lib}\\nFAKETIME=+10m\\n' >> /etc/environment`,
    )
    try {
      const r = await hostDoctor()
      expect(r.code).toBe(1)
      expect(checkOf(r, 'host.clock')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/ahead of this machine/),
      })
      expect(checkOf(r, 'host.clock').hint).toMatch(/timedatectl/)
    } finally {
      await guestShell(host, 'mv /etc/environment.dchk /etc/environment')
    }
    expect(checkOf(await hostDoctor(), 'host.clock').status).toBe('ok')
  }, 300_000)

  test('a replaced binary (turnserver swapped under the running coturn): host.restart-needed names it', async () => {
    await guestShell(
      host,
      'cp -p /usr/bin/turnserver /usr/bin/turnserver.dchk && mv /usr/bin/turnserver.dchk /usr/bin/turnserver',
    )
    try {
      const r = await hostDoctor()
      expect(r.code, show(r)).toBe(0) // a warning: the service still works, it runs the old code
      expect(checkOf(r, 'host.restart-needed')).toMatchObject({
        status: 'warn',
        detail: expect.stringContaining('turnserver ('),
      })
      expect(checkOf(r, 'host.restart-needed').hint).toMatch(/systemctl restart/)
      expect((await hostDoctor('--strict')).code).toBe(1)
    } finally {
      await guestShell(host, 'systemctl restart coturn')
    }
    expect(checkOf(await hostDoctor(), 'host.restart-needed').status).toBe('ok')
  }, 180_000)

  // The mail group (imap.xchatmail, mail.*), as an operator runs it against this IP-only server.
  const mailDoctor = async (...extra: string[]): Promise<DoctorJsonRun> => {
    // --timeout 20 unless the test gives its own (oclif refuses a flag given twice).
    const timeout = extra.includes('--timeout') ? [] : ['--timeout', '20']
    const args = ['doctor', host.host, '--ca', caFile, '--only', 'imap,mail', '--json', ...timeout, ...extra]
    const r = await runCli(args, { cwd: dir, env: { CHATMAIL_USER: '', CHATMAIL_PASSWORD: '' }, timeoutMs: 120_000 })
    try {
      return { ...r, report: JSON.parse(r.stdout) }
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
    }
  }
  const showOne = (c: JsonCheck) => `${c.id}: ${c.status} — ${c.detail}${c.hint ? ` (hint: ${c.hint})` : ''}`
  const doctorAccount = () => {
    const toml = parse(readFileSync(join(dir, 'chatmail.toml'), 'utf8')) as {
      doctor?: { user?: string; password?: string }
    }
    return { user: toml.doctor?.user ?? `doctor@[${host.host}]`, pass: toml.doctor?.password ?? '' }
  }
  const tls = () => ({ ca: readFileSync(caFile, 'utf8') })

  /** Submits a plaintext message to self on 465, without the doctor: the refusal, or undefined when accepted. */
  const plaintextRefusal = async (user: string, pass: string) => {
    const conn = new SMTPConnection({ host: host.host, port: 465, secure: true, tls: tls() })
    const call = <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
      new Promise<T>((res, rej) => fn((err, v) => (err ? rej(err) : res(v as T))))
    await new Promise<void>((res, rej) => {
      conn.once('error', rej)
      conn.connect(() => res())
    })
    try {
      await call((cb) => conn.login({ credentials: { user, pass } }, cb))
      await call((cb) =>
        conn.send(
          { from: user, to: [user] },
          `From: <${user}>\r\nTo: <${user}>\r\nSubject: plain\r\n\r\nnot encrypted\r\n`,
          cb,
        ),
      )
      return undefined
    } catch (err) {
      const e = err as { responseCode?: number; response?: string }
      if (!e.responseCode) throw err
      return { code: e.responseCode, text: e.response ?? '' }
    } finally {
      conn.quit()
    }
  }

  /** What the server really answers on HTTPS, read without the doctor. */
  const httpsStatus = (method: string, path: string): Promise<number> =>
    new Promise((done, reject) => {
      const req = httpsRequest({ host: host.host, port: 443, method, path, ...tls() }, (res) => {
        res.resume()
        done(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })

  test('the mail group: every verdict matches what the server does; submission and an encrypted round trip work', async () => {
    const r = await mailDoctor()
    const account = doctorAccount()
    const ids = r.report.checks.map((c) => c.id)
    for (const id of MAIL_IDS) expect(ids).toContain(id)
    for (const id of ['imap.tls', 'imap.login', 'mail.submission', 'mail.roundtrip']) {
      expect(checkOf(r, id).status, showOne(checkOf(r, id))).toBe('ok')
    }
    const rt = checkOf(r, 'mail.roundtrip')
    expect(rt.detail).toMatch(/arrived in INBOX \d+ ms after submission on 465 \(implicit TLS\), and decrypted intact/)
    process.stderr.write(`doctor ${rt.id}: ${rt.detail}\n`)
    expect(checkOf(r, 'mail.submission').detail).toContain(`logged in as ${account.user}`)

    // XCHATMAIL: read the capabilities ourselves.
    const imap = new ImapFlow({
      host: host.host,
      port: 993,
      secure: true,
      tls: tls(),
      auth: { user: account.user, pass: account.pass },
      logger: false,
    })
    await imap.connect()
    const hasX = imap.capabilities.has('XCHATMAIL')
    await imap.logout()
    // This server was deployed by chatmail (chatmail.toml in the working directory): a missing part fails.
    expect(checkOf(r, 'imap.xchatmail').status, showOne(checkOf(r, 'imap.xchatmail'))).toBe(hasX ? 'ok' : 'fail')
    const auto = await httpsStatus('GET', '/.well-known/autoconfig/mail/config-v1.1.xml')
    expect(checkOf(r, 'mail.autoconfig').status, showOne(checkOf(r, 'mail.autoconfig'))).toBe(
      auto === 200 ? 'ok' : 'fail',
    )
    const signup = await httpsStatus('GET', '/new')
    expect(checkOf(r, 'mail.signup').status, showOne(checkOf(r, 'mail.signup'))).toBe(signup === 405 ? 'ok' : 'fail')
    // Plaintext to self, sent here: refused with 5xx exactly when the doctor says ok.
    const refused = await plaintextRefusal(account.user, account.pass)
    const rej = checkOf(r, 'mail.rejects-unencrypted')
    expect(rej.status, showOne(rej)).toBe(refused && refused.code >= 500 ? 'ok' : 'fail')
    if (refused) expect(rej.detail).toContain(String(refused.code))
    for (const id of MAIL_IDS) {
      const c = checkOf(r, id)
      if (c.status === 'fail') expect(c.hint, showOne(c)).toBeTruthy()
      process.stderr.write(`  ${showOne(c)}\n`)
    }
  }, 180_000)

  test('the mail group with a wrong password: submission fails with a hint; the round trip is skipped saying why', async () => {
    const r = await mailDoctor('--user', doctorAccount().user, '--password', 'wrong-password-123')
    expect(r.code).toBe(1)
    const sub = checkOf(r, 'mail.submission')
    expect(sub.status, showOne(sub)).toBe('fail')
    expect(sub.detail).toMatch(/refused the login/)
    expect(sub.hint).toMatch(/dovecot/)
    const rt = checkOf(r, 'mail.roundtrip')
    expect(rt.status).toBe('skip')
    expect(rt.detail).toBe('needs mail.submission, which failed')
  }, 180_000)

  test('mail that is accepted but never delivered fails the round trip, not submission', async () => {
    await guestShell(host, 'postconf -e defer_transports=lmtp && postfix reload && sleep 1')
    try {
      // 10 s: under load, submission right after postfix's reload took more than 3 s (each check's limit).
      const r = await mailDoctor('--timeout', '10')
      expect(checkOf(r, 'mail.submission').status, showOne(checkOf(r, 'mail.submission'))).toBe('ok')
      const rt = checkOf(r, 'mail.roundtrip')
      expect(rt.status, showOne(rt)).toBe('fail')
      // Either the check's own words or the runner's timeout, with the check's hint.
      expect(rt.detail).toMatch(/did not arrive in INBOX within 10000 ms|timed out/)
      expect(rt.hint).toMatch(/postqueue -p/)
    } finally {
      await guestShell(host, 'postconf -X defer_transports && postfix reload && postqueue -f')
    }
  }, 180_000)

  test('the mail group without an account: the checks that need one are skipped with the reason', async () => {
    // No chatmail.toml in / and no account in the environment.
    const bare = await doctorJson([host.host, '--ca', caFile, '--only', 'mail', '--timeout', '20'], '/')
    for (const id of ['mail.submission', 'mail.roundtrip']) {
      const c = checkOf(bare, id)
      expect(c.status, showOne(c)).toBe('skip')
    }
    expect(checkOf(bare, 'mail.submission').detail).toMatch(/no account to log in with/)
  }, 180_000)
})
