/**
 * The doctor is fair to servers we did not deploy: a real coturn listening on UDP only (like
 * cmdeploy's chatmail-turn and Madmail's embedded TURN) behind a real dovecot whose METADATA has
 * no /turns, or /turns = /turn as Madmail serves it. Delta Chat uses TURN over UDP only, so TCP
 * and TLS are skipped with the reason and the exit code is 0. With a chatmail.toml for the domain
 * (we deployed it, coturn should listen on TCP and TLS too), the same server fails. --strict turns
 * the missing-relay warning into exit 1. Runs the built CLI (`npm run build` first).
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Coturn, startCoturn } from '../helpers/coturn.js'
import {
  checkOf,
  type DoctorJsonRun,
  type DoctorScratch,
  doctorJson,
  doctorScratch,
  loopbackDoctorArgs,
} from '../helpers/doctor-contract.js'
import { type Dovecot, type MetadataService, startDovecot, startMetadataService } from '../helpers/dovecot.js'

const SECRET = 'verdicts-secret-0123456789abcdef0123'

type Run = DoctorJsonRun

let coturn: Coturn
let metadata: MetadataService
let dovecot: Dovecot
let scratch: DoctorScratch | undefined
let dir: string
let caFile: string
let secretFile: string

beforeAll(async () => {
  coturn = await startCoturn({ secret: SECRET, certName: '127.0.0.1', udpOnly: true })
  // No iroh relay announced, no /turns: what a UDP-only server without a relay serves.
  metadata = await startMetadataService({
    secret: SECRET,
    domain: '127.0.0.1',
    turnHost: '127.0.0.1',
    turnPort: coturn.port,
    turnsPort: 'off',
  })
  dovecot = await startDovecot({
    metadata: { kind: 'proxy', socket: metadata.socket },
    cert: { name: 'localhost', altNames: ['IP:127.0.0.1'] },
  })
  scratch = await doctorScratch('chatmail-verdicts-', [dovecot.certPem], SECRET)
  ;({ dir, caFile, secretFile } = scratch)
}, 60_000)

afterAll(async () => {
  await Promise.allSettled([dovecot?.stop(), coturn?.stop()])
  await metadata?.stop()
  await scratch?.remove()
})

const doctor = (...extra: string[]): Promise<Run> =>
  doctorJson(
    [
      ...loopbackDoctorArgs(dovecot),
      '--turn-secret-file',
      secretFile,
      '--ca',
      caFile,
      '--timeout',
      '3',
      // This loopback server offers IMAP and TURN only: the tls group (submission, HTTPS) is
      // judged in doctor-tls.test.ts, the mail group in doctor-mail.test.ts.
      '--skip',
      'tls,mail',
      ...extra,
    ],
    dir,
  )

const check = checkOf

const show = (r: Run) => r.report.checks.map((c) => `${c.id}: ${c.status} — ${c.detail}`).join('\n')

describe('a UDP-only TURN server that is not ours', () => {
  it('no /turns: exit 0, UDP ok, TCP and TLS skipped with the reason, metadata.turns skipped', async () => {
    const r = await doctor()
    expect(r.code, show(r)).toBe(0)
    expect(check(r, 'turn.allocate.udp').status, show(r)).toBe('ok')
    expect(check(r, 'turn.rejects-bad-credentials').status, show(r)).toBe('ok')
    const tcp = check(r, 'turn.allocate.tcp')
    expect(tcp.status, show(r)).toBe('skip')
    expect(tcp.detail).toMatch(new RegExp(`nothing listens on TCP 127\\.0\\.0\\.1:${coturn.port}.*UDP only`))
    const tls = check(r, 'turn.allocate.tls')
    expect(tls.status, show(r)).toBe('skip')
    expect(tls.detail).toMatch(/no TURN over TLS is offered \(\/shared\/vendor\/deltachat\/turns is not set\)/)
    expect(check(r, 'metadata.turns')).toMatchObject({ status: 'skip', detail: expect.stringMatching(/not set/) })
    // No relay announced: a warning, not a failure; the relay checks skip for want of a URL.
    expect(check(r, 'metadata.irohrelay').status).toBe('warn')
    expect(r.report.status).toBe('warn')
    expect(r.report.checks.filter((c) => c.status === 'fail')).toEqual([])
  })

  it('--strict: the same warning fails the exit code, the report is the same', async () => {
    const r = await doctor('--strict')
    expect(r.code, show(r)).toBe(1)
    expect(r.report.status).toBe('warn')
    expect(r.report.checks.filter((c) => c.status === 'fail')).toEqual([])
  })

  it('/turns = /turn (as Madmail serves it): both skipped, saying so; exit 0', async () => {
    metadata.writeConfig({ turnsPort: coturn.port })
    expect(await metadata.reload()).toMatch(/reloaded/)
    try {
      const r = await doctor()
      expect(r.code, show(r)).toBe(0)
      for (const id of ['metadata.turns', 'turn.allocate.tls']) {
        const c = check(r, id)
        expect(c.status, show(r)).toBe('skip')
        expect(c.detail).toMatch(
          new RegExp(`same server as .*turn \\(127\\.0\\.0\\.1:${coturn.port}\\), as Madmail serves it`),
        )
      }
      expect(check(r, 'turn.allocate.udp').status).toBe('ok')
    } finally {
      metadata.writeConfig({ turnsPort: 'off' })
      await metadata.reload()
    }
  })
})

describe('the same server when chatmail.toml says we deployed it', () => {
  it('TURN over TCP and TLS are part of our stack: both fail, with hints; exit 1', async () => {
    const cfg = join(dir, 'chatmail.toml')
    const toml = [
      'domain = "127.0.0.1"',
      '[turn]',
      `secret = "${SECRET}"`,
      'host = "127.0.0.1"',
      `port = ${coturn.port}`,
      `tls_port = ${coturn.tlsPort}`,
      '',
    ].join('\n')
    await writeFile(cfg, toml, { mode: 0o600 })
    const r = await doctor('-c', cfg, '--only', 'turn')
    expect(r.code, show(r)).toBe(1)
    expect(check(r, 'turn.allocate.udp').status, show(r)).toBe('ok')
    for (const id of ['turn.allocate.tcp', 'turn.allocate.tls']) {
      const c = check(r, id)
      expect(c.status, show(r)).toBe('fail')
      expect(c.hint ?? '').toMatch(/coturn/)
    }
  })
})
