/**
 * The imap, discovery and credentials checks against a real dovecot on loopback, with the three
 * Delta Chat metadata keys in a file dict, credentials minted here with a known secret, and one
 * fault at a time. Each fault must be caught by the right check id, with a hint.
 */
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { credentialChecks } from '../../src/doctor/checks/credentials.js'
import { imapChecks } from '../../src/doctor/checks/imap.js'
import { metadataChecks } from '../../src/doctor/checks/metadata.js'
import { runDoctor } from '../../src/doctor/index.js'
import type { CheckResult, DoctorOptions, DoctorReport } from '../../src/doctor/model.js'
import { METADATA_KEYS } from '../../src/protocols/metadata-values.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'
import { type CertOptions, type Dovecot, startDovecot } from '../helpers/dovecot.js'

const SECRET = 'doctor-test-secret-0123456789abcdef'
const CHECKS = [...imapChecks, ...metadataChecks, ...credentialChecks]
const LOCAL_CERT: CertOptions = { name: 'localhost', altNames: ['IP:127.0.0.1'] }

const started: Dovecot[] = []
afterAll(async () => {
  await Promise.all(started.map((d) => d.stop()))
})

function turnValue(opts: { secret?: string; ttlSeconds?: number; host?: string } = {}): string {
  const cred = mintTurnCredential(opts.secret ?? SECRET, { ttlSeconds: opts.ttlSeconds ?? 86400, nowMs: Date.now() })
  return `${opts.host ?? 'turn.example.org'}:3478:${cred.username}:${cred.password}`
}

function goodValues(): Record<string, string> {
  return { [METADATA_KEYS.irohrelay]: 'https://relay.example.org', [METADATA_KEYS.turn]: turnValue() }
}

async function dovecot(values: Record<string, string>, more: { cert?: CertOptions; advertise?: boolean } = {}) {
  const d = await startDovecot({
    metadata: { kind: 'file', values },
    cert: more.cert ?? LOCAL_CERT,
    advertiseMetadata: more.advertise ?? true,
  })
  started.push(d)
  return d
}

function options(d: Dovecot, extra: Partial<DoctorOptions> = {}): DoctorOptions {
  return {
    domain: 'localhost',
    imapHost: d.host,
    imapPort: d.imapsPort,
    user: d.user,
    password: d.password,
    turnSecret: SECRET,
    ca: d.certPem,
    insecure: false,
    timeoutMs: 5000,
    ...extra,
  }
}

const doctor = (o: DoctorOptions): Promise<DoctorReport> => runDoctor(o, { checks: CHECKS })

function check(report: DoctorReport, id: string): CheckResult {
  const r = report.checks.find((c) => c.id === id)
  if (!r) throw new Error(`no result for ${id}: ${JSON.stringify(report.checks.map((c) => c.id))}`)
  return r
}

const statuses = (report: DoctorReport) => Object.fromEntries(report.checks.map((c) => [c.id, c.status]))

describe('doctor against a healthy dovecot', () => {
  it('passes every check; /turns absent is a skip', async () => {
    const d = await dovecot(goodValues())
    const report = await doctor(options(d))
    expect(statuses(report)).toEqual({
      'imap.tls': 'ok',
      'imap.login': 'ok',
      'imap.metadata.capability': 'ok',
      'metadata.irohrelay': 'ok',
      'metadata.turn': 'ok',
      'metadata.turns': 'skip',
      'turn.credential.hmac': 'ok',
      'turn.credential.expiry': 'ok',
    })
    expect(report.status).toBe('ok')
    expect(check(report, 'metadata.irohrelay').detail).toContain('https://relay.example.org')
    expect(check(report, 'metadata.turn').detail).toContain('turn.example.org:3478')
  })

  it('reads a /turns value too, and works over STARTTLS', async () => {
    const d = await dovecot({ ...goodValues(), [METADATA_KEYS.turns]: turnValue().replace(':3478:', ':5349:') })
    const report = await doctor(options(d, { imapPort: d.imapPort, imapStarttls: true }))
    expect(report.status).toBe('ok')
    expect(check(report, 'metadata.turns')).toMatchObject({ status: 'ok' })
    expect(check(report, 'metadata.turns').detail).toContain(':5349')
  })

  it('skips (not fails) the signature check without a secret, and the login without an account', async () => {
    const d = await dovecot(goodValues())
    const noSecret = await doctor(options(d, { turnSecret: undefined }))
    expect(check(noSecret, 'turn.credential.hmac').status).toBe('skip')
    expect(noSecret.status).toBe('ok')
    const noUser = await doctor(options(d, { user: undefined, password: undefined }))
    expect(check(noUser, 'imap.login').status).toBe('skip')
    expect(check(noUser, 'metadata.turn')).toMatchObject({ status: 'skip', detail: expect.stringContaining('imap') })
  })
})

describe('doctor catches each fault with the right check', () => {
  it('wrong secret: turn.credential.hmac fails', async () => {
    const d = await dovecot({
      ...goodValues(),
      [METADATA_KEYS.turn]: turnValue({ secret: 'another-secret-entirely-123' }),
    })
    const r = check(await doctor(options(d)), 'turn.credential.hmac')
    expect(r.status).toBe('fail')
    expect(r.hint).toMatch(/secret/)
  })

  it('the public chatmail-turn secret "north" is a security failure, even without a known secret', async () => {
    const d = await dovecot({ ...goodValues(), [METADATA_KEYS.turn]: turnValue({ secret: 'north' }) })
    const r = check(await doctor(options(d, { turnSecret: undefined })), 'turn.credential.hmac')
    expect(r.status).toBe('fail')
    expect(r.detail).toContain('north')
    expect(r.hint).toMatch(/private secret/)
  })

  it('expired credentials: turn.credential.expiry fails; under 12 h left: warns', async () => {
    const d = await dovecot({ ...goodValues(), [METADATA_KEYS.turn]: turnValue({ ttlSeconds: -60 }) })
    const report = await doctor(options(d))
    expect(check(report, 'turn.credential.expiry')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('fresh'),
    })
    expect(check(report, 'turn.credential.hmac').status).toBe('ok')
    const soon = await dovecot({ ...goodValues(), [METADATA_KEYS.turn]: turnValue({ ttlSeconds: 3600 }) })
    const warned = await doctor(options(soon))
    expect(check(warned, 'turn.credential.expiry')).toMatchObject({
      status: 'warn',
      hint: expect.stringContaining('ttl'),
    })
    expect(warned.status).toBe('warn')
  })

  it('METADATA not advertised: the capability check fails and discovery is skipped, naming it', async () => {
    const d = await dovecot(goodValues(), { advertise: false })
    const report = await doctor(options(d))
    expect(check(report, 'imap.metadata.capability')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('imap_metadata'),
    })
    for (const id of ['metadata.irohrelay', 'metadata.turn', 'metadata.turns']) {
      expect(check(report, id)).toMatchObject({
        status: 'skip',
        detail: expect.stringContaining('imap.metadata.capability'),
      })
    }
    // Two steps away, it names where the chain began: the check that failed.
    expect(check(report, 'turn.credential.hmac')).toMatchObject({
      status: 'skip',
      detail: 'needs imap.metadata.capability, which failed',
    })
  })

  it('turn key missing: metadata.turn warns (calls fall back to turn.delta.chat); fails when our config deployed TURN', async () => {
    const d = await dovecot({ [METADATA_KEYS.irohrelay]: 'https://relay.example.org' })
    const report = await doctor(options(d))
    expect(check(report, 'metadata.turn')).toMatchObject({ status: 'warn', hint: expect.stringContaining('metadata') })
    expect(check(report, 'metadata.irohrelay').status).toBe('ok')
    const deployed = await doctor(options(d, { deployed: true }))
    expect(check(deployed, 'metadata.turn')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('although the config deployed coturn'),
    })
  })

  it('malformed turn value: metadata.turn fails with the reason core gives', async () => {
    const d = await dovecot({ ...goodValues(), [METADATA_KEYS.turn]: 'turn.example.org:3478:alice:secret' })
    const r = check(await doctor(options(d)), 'metadata.turn')
    expect(r.status).toBe('fail')
    expect(r.detail).toContain('timestamp')
    expect(r.hint).toContain('host:port:timestamp:password')
  })

  it('bare IPv6 TURN host: metadata.turn fails and says so', async () => {
    const d = await dovecot({ ...goodValues(), [METADATA_KEYS.turn]: turnValue({ host: '2001:db8::1' }) })
    const r = check(await doctor(options(d)), 'metadata.turn')
    expect(r.status).toBe('fail')
    expect(r.detail).toContain('IPv6')
    expect(r.hint).toContain('DNS name')
  })

  it('an irohrelay value core would not accept: metadata.irohrelay fails', async () => {
    const d = await dovecot({ ...goodValues(), [METADATA_KEYS.irohrelay]: 'relay.example.org' })
    expect(check(await doctor(options(d)), 'metadata.irohrelay')).toMatchObject({ status: 'fail' })
  })
})

describe('imap.tls', () => {
  it('certificate for the wrong name: fail, the login skips naming it; warn with --insecure (and login then works)', async () => {
    const d = await dovecot(goodValues(), { cert: { name: 'mail.example.org' } })
    const strict = await doctor(options(d))
    expect(check(strict, 'imap.tls')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('mail.example.org'),
    })
    expect(check(strict, 'imap.tls').hint).toContain('subjectAltName')
    // The same certificate, one root cause: said by imap.tls, the login skips naming it.
    expect(check(strict, 'imap.login')).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(
        /^needs imap\.tls, which failed: the certificate on 127\.0\.0\.1:\d+ is not accepted$/,
      ),
    })
    const insecure = await doctor(options(d, { insecure: true }))
    expect(check(insecure, 'imap.tls').status).toBe('warn')
    expect(check(insecure, 'imap.login').status).toBe('ok')
  })

  it('expired certificate: fail naming the expiry; warn with --insecure', async () => {
    const d = await dovecot(goodValues(), { cert: { ...LOCAL_CERT, expired: true } })
    const r = check(await doctor(options(d)), 'imap.tls')
    expect(r).toMatchObject({ status: 'fail', detail: expect.stringContaining('CERT_HAS_EXPIRED') })
    expect(r.hint).toContain('renew')
    expect(check(await doctor(options(d, { insecure: true })), 'imap.tls').status).toBe('warn')
  })

  it('self-signed: fail without --ca, warn with --insecure, ok with --ca', async () => {
    const d = await dovecot(goodValues())
    const untrusted = check(await doctor(options(d, { ca: undefined })), 'imap.tls')
    expect(untrusted).toMatchObject({ status: 'fail', hint: expect.stringContaining('--ca') })
    expect(check(await doctor(options(d, { ca: undefined, insecure: true })), 'imap.tls').status).toBe('warn')
    expect(check(await doctor(options(d)), 'imap.tls').status).toBe('ok')
  })

  it('a certificate with days, not weeks, left warns', async () => {
    const d = await dovecot(goodValues(), { cert: { ...LOCAL_CERT, notAfter: new Date(Date.now() + 5 * 86_400_000) } })
    const r = check(await doctor(options(d)), 'imap.tls')
    expect(r).toMatchObject({ status: 'warn', detail: expect.stringContaining('4 days left') })
  })
})

describe('a black-holed IMAP port', () => {
  let server: Server | undefined
  afterAll(() => server?.close())

  it('fails the imap checks by timeout, skips the rest, finishes, and closes every connection', async () => {
    const sockets: Socket[] = []
    server = createServer((s) => {
      sockets.push(s)
      s.resume() // reads and drops everything, answers nothing
      s.on('error', () => undefined)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as { port: number }).port
    const report = await runDoctor(
      {
        domain: 'localhost',
        imapHost: '127.0.0.1',
        imapPort: port,
        user: 'alice@localhost',
        password: 'x',
        insecure: false,
        timeoutMs: 1000,
      },
      { checks: CHECKS },
    )
    expect(check(report, 'imap.tls')).toMatchObject({ status: 'fail', detail: expect.stringContaining('timed out') })
    expect(check(report, 'imap.tls').hint).toContain('dovecot')
    expect(check(report, 'imap.login').status).toBe('fail')
    expect(check(report, 'metadata.turn')).toMatchObject({ status: 'skip', detail: expect.stringContaining('imap.') })
    expect(report.status).toBe('fail')
    expect(sockets.length).toBeGreaterThanOrEqual(2)
    // Both clients hang up after their timeout; a leaked socket would keep this waiting.
    await Promise.all(sockets.map((s) => (s.destroyed || s.readableEnded ? undefined : once(s, 'close'))))
  })
})
