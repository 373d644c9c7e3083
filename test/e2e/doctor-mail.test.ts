/**
 * The doctor's mail-flow checks (imap.xchatmail, mail.*) as the built CLI, against real postfix
 * and dovecot on a host made by `chatmail deploy host` (a named server, self-signed; the doctor
 * resolves the name through a private /etc/hosts). Each verdict is compared with what the server really does, read
 * independently here; then faults, one at a time.
 */
import { writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { ImapFlow } from 'imapflow'
import SMTPConnection from 'nodemailer/lib/smtp-connection'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { type DeployedHost, startDeployedHost } from '../helpers/deployed-host.js'
import { checkOf, type DoctorJsonRun, doctorJson, type JsonCheck } from '../helpers/doctor-contract.js'
import { guestShell, testHostSkipReason } from '../helpers/testhost.js'

const HOST = { name: 'th-dc-82', index: 82 }
const DOMAIN = 'th-dc-82.test'
const MAIL_IDS = [
  'imap.xchatmail',
  'mail.autoconfig',
  'mail.signup',
  'mail.submission',
  'mail.roundtrip',
  'mail.rejects-unencrypted',
]
// Opt-in until a whole run passes: on the shared machine (load ≈ 25, 2026-11-30) the deploy of this
// named, self-signed host did not finish within the helper's 600 s three times. The mail group on
// IP-only hosts is judged by every deploy's doctor (deploy.test.ts asserts all ok, Debian 12 and 13).
const skip = process.env.CHATMAIL_E2E_DOCTOR_MAIL === '1' ? testHostSkipReason() : 'opt-in: CHATMAIL_E2E_DOCTOR_MAIL=1'

const show = (c: JsonCheck) => `${c.id}: ${c.status} — ${c.detail}${c.hint ? ` (hint: ${c.hint})` : ''}`

describe.skipIf(skip)(`doctor mail-flow checks against a deployed server${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: DeployedHost
  let caFile: string
  let pem = ''
  let hostsFile: string
  /**
   * The built doctor for DOMAIN in a private mount namespace whose /etc/hosts maps the name to the
   * host (the runner has no DNS for it), with the server's certificate as --ca.
   */
  const doctor = async (...extra: string[]): Promise<DoctorJsonRun> => {
    const wrap = [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      'mount --bind "$0" /etc/hosts && exec "$@"',
      hostsFile,
    ]
    const args = ['doctor', DOMAIN, '--ca', caFile, '--only', 'imap,mail', '--json', ...extra]
    const r = await runCli(args, { cwd: d.dir, env: { CHATMAIL_USER: '', CHATMAIL_PASSWORD: '' }, wrap })
    try {
      return { ...r, report: JSON.parse(r.stdout) }
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
    }
  }

  /** Submits a plaintext message to self on 465, without the doctor: the refusal, or undefined when accepted. */
  const plaintextRefusal = async (user: string, pass: string) => {
    const conn = new SMTPConnection({
      host: d.host.host,
      port: 465,
      secure: true,
      tls: { servername: DOMAIN, ca: pem },
    })
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
    new Promise((resolve, reject) => {
      const req = request(
        { host: d.host.host, port: 443, method, path, headers: { host: DOMAIN }, servername: DOMAIN, ca: pem },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', reject)
      req.end()
    })

  beforeAll(async () => {
    d = await startDeployedHost({
      ...HOST,
      domain: DOMAIN,
      initArgs: ['--tls', 'self-signed'],
      // The runner cannot resolve the name: no DNS check; the doctor runs below with a private /etc/hosts.
      deployArgs: ['--skip-dns-check', '--no-doctor'],
    })
    pem = await guestShell(d.host, 'cat /etc/chatmail/tls/fullchain.pem')
    caFile = join(d.dir, 'server-ca.pem')
    writeFileSync(caFile, pem)
    hostsFile = join(d.dir, 'hosts')
    writeFileSync(hostsFile, `127.0.0.1 localhost\n${d.host.host} ${DOMAIN}\n`)
  }, 900_000)

  afterAll(async () => {
    await d?.stop()
  }, 120_000)

  test('every verdict matches what the server does; submission and an encrypted round trip work', async () => {
    const r = await doctor()
    const ids = r.report.checks.map((c) => c.id)
    for (const id of MAIL_IDS) expect(ids).toContain(id)
    for (const id of ['imap.tls', 'imap.login', 'mail.submission', 'mail.roundtrip']) {
      expect(checkOf(r, id).status, show(checkOf(r, id))).toBe('ok')
    }
    const rt = checkOf(r, 'mail.roundtrip')
    expect(rt.detail).toMatch(/arrived in INBOX \d+ ms after submission on 465 \(implicit TLS\), and decrypted intact/)
    process.stderr.write(`doctor ${rt.id}: ${rt.detail}\n`)
    expect(checkOf(r, 'mail.submission').detail).toContain(`logged in as ${d.doctor.user}`)

    // XCHATMAIL: read the capabilities ourselves.
    const imap = new ImapFlow({
      host: d.host.host,
      port: 993,
      secure: true,
      tls: { servername: DOMAIN, ca: pem },
      auth: { user: d.doctor.user, pass: d.doctor.password },
      logger: false,
    })
    await imap.connect()
    const hasX = imap.capabilities.has('XCHATMAIL')
    await imap.logout()
    // This server was deployed by chatmail (chatmail.toml in the working directory): a missing part fails.
    expect(checkOf(r, 'imap.xchatmail').status, show(checkOf(r, 'imap.xchatmail'))).toBe(hasX ? 'ok' : 'fail')
    const auto = await httpsStatus('GET', '/.well-known/autoconfig/mail/config-v1.1.xml')
    expect(checkOf(r, 'mail.autoconfig').status, show(checkOf(r, 'mail.autoconfig'))).toBe(auto === 200 ? 'ok' : 'fail')
    const signup = await httpsStatus('GET', '/new')
    expect(checkOf(r, 'mail.signup').status, show(checkOf(r, 'mail.signup'))).toBe(signup === 405 ? 'ok' : 'fail')
    // Plaintext to self, sent here: refused with 5xx exactly when the doctor says ok.
    const refused = await plaintextRefusal(d.doctor.user, d.doctor.password)
    const rej = checkOf(r, 'mail.rejects-unencrypted')
    expect(rej.status, show(rej)).toBe(refused && refused.code >= 500 ? 'ok' : 'fail')
    if (refused) expect(rej.detail).toContain(String(refused.code))
    for (const id of MAIL_IDS) {
      const c = checkOf(r, id)
      if (c.status === 'fail') expect(c.hint, show(c)).toBeTruthy()
      process.stderr.write(`  ${show(c)}\n`)
    }
  }, 120_000)

  test('a wrong password fails submission with a hint; the round trip is skipped saying why', async () => {
    const r = await doctor('--user', d.doctor.user, '--password', 'wrong-password-123')
    expect(r.code).toBe(1)
    const sub = checkOf(r, 'mail.submission')
    expect(sub.status, show(sub)).toBe('fail')
    expect(sub.detail).toMatch(/refused the login/)
    expect(sub.hint).toMatch(/dovecot/)
    const rt = checkOf(r, 'mail.roundtrip')
    expect(rt.status).toBe('skip')
    expect(rt.detail).toBe('needs mail.submission, which failed')
  }, 60_000)

  test('mail that is accepted but never delivered fails the round trip, not submission', async () => {
    await guestShell(d.host, 'postconf -e defer_transports=lmtp && postfix reload && sleep 1')
    try {
      const r = await doctor('--timeout', '3')
      expect(checkOf(r, 'mail.submission').status, show(checkOf(r, 'mail.submission'))).toBe('ok')
      const rt = checkOf(r, 'mail.roundtrip')
      expect(rt.status, show(rt)).toBe('fail')
      // Either the check's own words or the runner's timeout, with the check's hint.
      expect(rt.detail).toMatch(/did not arrive in INBOX within 3000 ms|timed out/)
      expect(rt.hint).toMatch(/postqueue -p/)
    } finally {
      await guestShell(d.host, 'postconf -X defer_transports && postfix reload && postqueue -f')
    }
  }, 60_000)

  test('without an account the mail checks that need one are skipped with the reason', async () => {
    // No chatmail.toml in / and no account in the environment.
    const bare = await doctorJson([DOMAIN, '--imap-host', d.host.host, '--ca', caFile, '--only', 'mail'], '/')
    for (const id of ['mail.submission', 'mail.roundtrip']) {
      const c = checkOf(bare, id)
      expect(c.status, show(c)).toBe('skip')
    }
    expect(checkOf(bare, 'mail.submission').detail).toMatch(/no account to log in with/)
  }, 60_000)
})
