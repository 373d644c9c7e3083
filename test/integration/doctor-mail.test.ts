/**
 * The mail group (and imap.xchatmail) through the built CLI against real servers on loopback:
 * dovecot for IMAP and SMTP submission (its submission service, package dovecot-submissiond:
 * implicit TLS and STARTTLS, logins against its passdb), and `openssl s_server -WWW` serving an
 * autoconfig XML over HTTPS; --tls-port points the checks at their ports. The submission service
 * relays to a loopback port where nothing listens, so no message can be delivered here: the round
 * trip through postfix and dovecot is proven on a deployed host (test/e2e/doctor-host.test.ts).
 * Without a chatmail.toml the server is not ours: what it does not offer is a warning or a skip;
 * with one (we deployed it) the same gaps fail.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTOCONFIG_PATH } from '../../src/doctor/checks/mail.js'
import { checkOf, type DoctorJsonRun, doctorJson, loopbackDoctorArgs } from '../helpers/doctor-contract.js'
import {
  type Dovecot,
  freePort,
  HAS_SUBMISSION,
  type SubmissionPorts,
  startDovecot,
  startHttps,
  submissionConfig,
} from '../helpers/dovecot.js'

const SECRET = 'doctor-mail-secret-0123456789abcdef'
const MAIL_IDS = ['mail.autoconfig', 'mail.signup', 'mail.submission', 'mail.roundtrip', 'mail.rejects-unencrypted']

let dovecot: Dovecot
let https: Awaited<ReturnType<typeof startHttps>>
let submission: SubmissionPorts
let dir: string
let caFile: string

const autoconfigXml = (imapPort: number, smtpPort: number) => `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="127.0.0.1">
    <domain>127.0.0.1</domain>
    <incomingServer type="imap">
      <hostname>127.0.0.1</hostname><port>${imapPort}</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>127.0.0.1</hostname><port>${smtpPort}</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
`

beforeAll(async () => {
  if (!existsSync(resolve('dist/cli.js'))) throw new Error('build the CLI first: npm run build')
  if (!HAS_SUBMISSION) throw new Error('dovecot-submissiond is not installed: run `bash scripts/test-deps.sh`')
  dir = await mkdtemp(join(tmpdir(), 'chatmail-doctor-mail-'))
  submission = { implicit: await freePort(), starttls: await freePort() }
  const cert = { name: 'localhost', altNames: ['IP:127.0.0.1'] }
  dovecot = await startDovecot({
    cert,
    user: 'alice@127.0.0.1',
    extraConfig: `${submissionConfig(submission)}\nimap_capability = +XCHATMAIL`,
  })
  const root = join(dir, 'www')
  mkdirSync(join(root, AUTOCONFIG_PATH, '..'), { recursive: true })
  await writeFile(join(root, AUTOCONFIG_PATH), autoconfigXml(dovecot.imapsPort, submission.implicit))
  https = await startHttps(dir, { ...cert, name: 'web.localhost' }, root)
  caFile = join(dir, 'ca.pem')
  await writeFile(caFile, [dovecot.certPem, https.certPem].join('\n'))
}, 90_000)

afterAll(async () => {
  https?.stop()
  await dovecot?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const doctor = (o: { ports?: Record<string, number>; password?: string; config?: string; timeout?: number } = {}) => {
  const ports = { https: https.port, submission: submission.implicit, 'submission-starttls': submission.starttls }
  const tlsPorts = Object.entries({ ...ports, ...o.ports })
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
  return doctorJson(
    [
      ...loopbackDoctorArgs(dovecot, { password: o.password }),
      '--ca',
      caFile,
      '--tls-port',
      tlsPorts,
      '--only',
      'imap,mail',
      '--timeout',
      String(o.timeout ?? 4),
      ...(o.config ? ['-c', o.config] : []),
    ],
    dir,
  )
}

const show = (r: DoctorJsonRun) => r.report.checks.map((c) => `${c.id}: ${c.status} — ${c.detail}`).join('\n')

describe('the mail group against a server that is not ours', () => {
  it('XCHATMAIL and the autoconfig XML ok, /new skipped (no sign-up there), submission ok; the round trip fails on the server’s refusal', async () => {
    const r = await doctor()
    expect(r.report.checks.map((c) => c.id)).toEqual([
      'imap.tls',
      'imap.login',
      'imap.metadata.capability',
      'imap.xchatmail',
      ...MAIL_IDS,
    ])
    expect(checkOf(r, 'imap.xchatmail').status, show(r)).toBe('ok')
    expect(checkOf(r, 'mail.autoconfig')).toMatchObject({
      status: 'ok',
      detail: `imap 127.0.0.1:${dovecot.imapsPort} ssl, smtp 127.0.0.1:${submission.implicit} ssl`,
    })
    // s_server answers GET /new with 200 and an error text: not a sign-up endpoint, and not ours to demand one.
    expect(checkOf(r, 'mail.signup')).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(/\/new answered 200: the server offers no sign-up there/),
    })
    expect(checkOf(r, 'mail.submission')).toMatchObject({
      status: 'ok',
      detail: `logged in as ${dovecot.user} at 127.0.0.1:${submission.implicit} (implicit TLS)`,
    })
    // Its relay is down: the server does not take the message, and the check says what it answered.
    const rt = checkOf(r, 'mail.roundtrip')
    expect(rt.status, show(r)).toBe('fail')
    expect(rt.detail).toMatch(/the server refused the encrypted message to self: [45]\d\d /)
    expect(rt.hint).toBeTruthy()
    expect(r.code).toBe(1)
  })

  it('a wrong password: submission fails naming the login, the round trip is skipped saying why', async () => {
    // dovecot answers a failed login after a pause that grows with each failure from the address
    // (IMAP's and SMTP's here): more time than the other runs need.
    const r = await doctor({ password: 'not-the-password-123', timeout: 20 })
    const sub = checkOf(r, 'mail.submission')
    expect(sub.status, show(r)).toBe('fail')
    expect(sub.detail).toMatch(/refused the login of alice@127\.0\.0\.1: 535/)
    expect(sub.hint).toMatch(/dovecot/)
    expect(checkOf(r, 'mail.roundtrip')).toMatchObject({
      status: 'skip',
      detail: 'needs mail.submission, which failed',
    })
  })

  it('nothing on HTTPS: autoconfig warns, sign-up skipped; nothing on submission fails at once, naming both ports', async () => {
    const [none1, none2, none3] = [await freePort(), await freePort(), await freePort()]
    const r = await doctor({ ports: { https: none1, submission: none2, 'submission-starttls': none3 } })
    expect(checkOf(r, 'mail.autoconfig')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(
        new RegExp(`nothing answers HTTPS on 127\\.0\\.0\\.1:${none1}, so no autoconfig XML`),
      ),
    })
    expect(checkOf(r, 'mail.signup')).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(/nothing answers HTTPS .*: the server offers no sign-up/),
    })
    const sub = checkOf(r, 'mail.submission')
    expect(sub.status, show(r)).toBe('fail')
    // A refused connection is an answer: no waiting for the timeout.
    expect(sub.detail).toMatch(
      new RegExp(`no SMTP submission at 127\\.0\\.0\\.1 on ${none2} or ${none3}: .*ECONNREFUSED`),
    )
    expect(sub.detail).not.toMatch(/timed out|no answer within/)
  })
})

describe('the same server when chatmail.toml says we deployed it', () => {
  it('no HTTPS: autoconfig fails with the hint (our nginx serves it); sign-up, on the same port, skips naming it', async () => {
    const cfg = join(dir, 'chatmail.toml')
    await writeFile(cfg, ['domain = "127.0.0.1"', '[turn]', `secret = "${SECRET}"`, ''].join('\n'), { mode: 0o600 })
    const none = await freePort()
    const r = await doctor({ ports: { https: none }, config: cfg })
    const autoconfig = checkOf(r, 'mail.autoconfig')
    expect(autoconfig.status, show(r)).toBe('fail')
    expect(autoconfig.hint).toMatch(/nginx must answer HTTPS/)
    // One cause, said once: the closed HTTPS port.
    expect(checkOf(r, 'mail.signup')).toMatchObject({
      status: 'skip',
      detail: `needs mail.autoconfig, which failed: nothing answers on 127.0.0.1:${none}`,
      hint: null,
    })
    expect(r.code).toBe(1)
  })
})
