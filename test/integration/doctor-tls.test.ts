/**
 * The tls group against real servers on loopback: dovecot for IMAP 993 and submission 465/587
 * (its submission service, package dovecot-submissiond: implicit TLS and STARTTLS), a second
 * dovecot with an EXPIRED certificate on 465 only, coturn for TURN over TLS, and `openssl s_server`
 * for HTTPS. The built CLI (`npm run build` first) with --tls-port pointing at their ports.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Coturn, startCoturn } from '../helpers/coturn.js'
import { checkOf, type DoctorJsonRun, doctorJson } from '../helpers/doctor-contract.js'
import {
  type Dovecot,
  freePort,
  HAS_SUBMISSION,
  type SubmissionPorts as Submission,
  startDovecot,
  startHttps,
  submissionConfig,
} from '../helpers/dovecot.js'

const TLS_IDS = ['tls.imap', 'tls.submission', 'tls.submission-starttls', 'tls.https', 'tls.turns']

let good: Dovecot
let expired: Dovecot
let coturn: Coturn
let https: Awaited<ReturnType<typeof startHttps>> | undefined
let goodPorts: Submission
let expiredPorts: Submission
let httpsPort: number
let dir: string
let caFile: string

beforeAll(async () => {
  if (!existsSync(resolve('dist/cli.js'))) throw new Error('build the CLI first: npm run build')
  if (!HAS_SUBMISSION) throw new Error('dovecot-submissiond is not installed: run `bash scripts/test-deps.sh`')
  dir = await mkdtemp(join(tmpdir(), 'chatmail-doctor-tls-'))
  goodPorts = { implicit: await freePort(), starttls: await freePort() }
  expiredPorts = { implicit: await freePort(), starttls: await freePort() }
  const cert = { name: 'localhost', altNames: ['IP:127.0.0.1'] }
  ;[good, expired, coturn] = await Promise.all([
    startDovecot({ cert, extraConfig: submissionConfig(goodPorts) }),
    // Distinct names: with several self-signed certificates of one subject in --ca, OpenSSL would
    // look up the issuer by name and pick the wrong one.
    startDovecot({
      cert: { ...cert, name: 'expired.localhost', expired: true },
      extraConfig: submissionConfig(expiredPorts),
    }),
    startCoturn({ certName: '127.0.0.1' }),
  ])
  https = await startHttps(dir, { ...cert, name: 'web.localhost' })
  httpsPort = https.port
  caFile = join(dir, 'ca.pem')
  await writeFile(caFile, [good.certPem, expired.certPem, coturn.caPem, https.certPem].join('\n'))
}, 90_000)

afterAll(async () => {
  https?.stop()
  await Promise.allSettled([good?.stop(), expired?.stop(), coturn?.stop()])
  if (dir) await rm(dir, { recursive: true, force: true })
})

const ports = (o: Partial<Record<string, number>>) =>
  Object.entries({
    imap: good.imapsPort,
    submission: goodPorts.implicit,
    'submission-starttls': goodPorts.starttls,
    https: httpsPort,
    turns: coturn.tlsPort,
    ...o,
  })
    .map(([k, v]) => `${k}=${v}`)
    .join(',')

const doctor = (o: Partial<Record<string, number>> = {}, ...extra: string[]): Promise<DoctorJsonRun> =>
  doctorJson(['127.0.0.1', '--only', 'tls', '--ca', caFile, '--tls-port', ports(o), '--timeout', '3', ...extra], dir)

const show = (r: DoctorJsonRun) => r.report.checks.map((c) => `${c.id}: ${c.status} — ${c.detail}`).join('\n')

describe('TLS on every endpoint', () => {
  it('all five endpoints with valid certificates: ok, each naming its port; coturn’s 2-day certificate warns; exit 0', async () => {
    const r = await doctor()
    expect(r.code, show(r)).toBe(0)
    expect(r.report.checks.map((c) => c.id)).toEqual(TLS_IDS)
    for (const id of TLS_IDS.filter((i) => i !== 'tls.turns')) expect(checkOf(r, id).status, show(r)).toBe('ok')
    // The test coturn's certificate is valid for 2 days: under 14 days left is a warning.
    expect(checkOf(r, 'tls.turns')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/days left\); renew soon/),
    })
    expect(checkOf(r, 'tls.turns').hint).toMatch(/reload coturn/)
    expect(checkOf(r, 'tls.submission-starttls').detail).toContain(`127.0.0.1:${goodPorts.starttls}: TLS`)
    expect(checkOf(r, 'tls.https').detail).toMatch(/days left/)
  })

  it('an expired certificate on 465 only: tls.submission fails with a renew hint, every other endpoint ok', async () => {
    const r = await doctor({ submission: expiredPorts.implicit })
    expect(r.code, show(r)).toBe(1)
    const c = checkOf(r, 'tls.submission')
    expect(c.status, show(r)).toBe('fail')
    expect(c.detail).toMatch(/CERT_HAS_EXPIRED/)
    expect(c.hint).toMatch(/renew the certificate.*postfix/)
    for (const id of TLS_IDS.filter((i) => i !== 'tls.submission'))
      expect(checkOf(r, id).status, show(r)).not.toBe('fail')
    expect(r.report.checks.filter((x) => x.status === 'fail').map((x) => x.id)).toEqual(['tls.submission'])
  })

  it('not offered on a server we did not deploy: 465, HTTPS and TURN-TLS skipped with the reason; exit 0', async () => {
    const [none1, none2, none3] = [await freePort(), await freePort(), await freePort()]
    const r = await doctor({ submission: none1, https: none2, turns: none3 })
    expect(r.code, show(r)).toBe(0)
    expect(checkOf(r, 'tls.submission')).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(new RegExp(`nothing listens.*sends mail over port ${goodPorts.starttls}`)),
    })
    expect(checkOf(r, 'tls.https')).toMatchObject({ status: 'skip', detail: expect.stringMatching(/no HTTPS/) })
    expect(checkOf(r, 'tls.turns')).toMatchObject({ status: 'skip', detail: expect.stringMatching(/UDP only/) })
  })

  it('neither 465 nor 587 answers: Delta Chat cannot send mail, said once (tls.submission fails, -starttls names it)', async () => {
    const [implicit, starttls] = [await freePort(), await freePort()]
    const r = await doctor({ submission: implicit, 'submission-starttls': starttls })
    expect(r.code, show(r)).toBe(1)
    expect(checkOf(r, 'tls.submission')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/cannot send mail/),
    })
    const ports = [implicit, starttls].sort((a, b) => a - b).join(', ')
    expect(checkOf(r, 'tls.submission-starttls')).toMatchObject({
      status: 'skip',
      detail: `needs tls.submission, which failed: nothing answers SMTP submission on 127.0.0.1 (ports ${ports})`,
    })
  })

  it('a bad --tls-port is a usage error (exit 2, one line)', async () => {
    const r = await doctorJson(['127.0.0.1', '--only', 'tls', '--tls-port', 'smtp=25'], dir)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--tls-port smtp=25 is not NAME=PORT/)
  })
})
