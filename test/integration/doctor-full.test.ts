/**
 * The WHOLE doctor, as the built CLI (`npm run build` first, as `npm test` does), against a complete
 * loopback chatmail server: a real dovecot (implicit TLS, a certificate for a name we made, trusted
 * via --ca) whose METADATA comes from our chatmail-metadata service (secret S), a real coturn with
 * the same secret S, and the iroh-relay stand-in. First every check must pass; then one fault at a
 * time, each caught by the right check id with a hint while the unrelated checks stay ok.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Coturn, startCoturn } from '../helpers/coturn.js'
import {
  CHECK_IDS,
  checkOf,
  type DoctorJsonRun,
  type DoctorScratch,
  doctorJson,
  doctorScratch,
  type JsonCheck,
  LOCAL_CHECK_IDS,
  loopbackDoctorArgs,
} from '../helpers/doctor-contract.js'
import type { Dovecot, MetadataService } from '../helpers/dovecot.js'
import { type LoopbackServer, startLoopbackServer } from '../helpers/loopback-server.js'
import { type StandInFault, type StandInRelay, startStandInRelay } from '../helpers/relay.js'

const SECRET = 'full-doctor-secret-0123456789abcdef'
const OTHER_SECRET = 'another-coturn-secret-fedcba9876543210'
/** The name on dovecot's certificate (plus IP:127.0.0.1, the address we connect to). */
const IMAP_CERT_NAME = 'imap.doctor-full.test'

/**
 * The loopback server has no submission, HTTPS, postfix or standard ports: the tls group is proven
 * in doctor-tls.test.ts and the mail group on a deployed host (test/e2e/doctor-host.test.ts); both
 * are skipped here (--skip tls,mail), so every other check is judged.
 */
const IDS = CHECK_IDS.filter((id) => !id.startsWith('tls.'))
/** The checks judged here (IDS without the mail group). */
const SERVED: readonly string[] = IDS.filter((id) => !id.startsWith('mail.'))
const TURN_ALLOCATE = ['turn.allocate.udp', 'turn.allocate.tcp', 'turn.allocate.tls']
const RELAY = IDS.filter((id) => id.startsWith('relay.'))

type Check = JsonCheck
type Run = DoctorJsonRun

let loopback: LoopbackServer | undefined
let coturn: Coturn
let relay: StandInRelay
let metadata: MetadataService
let dovecot: Dovecot
let scratch: DoctorScratch | undefined
let dir: string
/** dovecot's certificate and coturn's, concatenated: one --ca for IMAP and TURN over TLS. */
let caFile: string
let secretFile: string

beforeAll(async () => {
  loopback = await startLoopbackServer({ secret: SECRET, domain: 'doctor-full.test', imapCertName: IMAP_CERT_NAME })
  ;({ coturn, relay, metadata, dovecot } = loopback)
  scratch = await doctorScratch('chatmail-doctor-full-', [loopback.caPem], SECRET)
  ;({ dir, caFile, secretFile } = scratch)
})

afterAll(async () => {
  await loopback?.stop()
  await scratch?.remove()
})

const cli = (args: string[]): Promise<Run> => doctorJson(args, dir)

/** The server under test, over implicit TLS, with the account, the TURN secret and the CA. */
const server = (over: { ca?: string; secret?: string } = {}) => [
  ...loopbackDoctorArgs(dovecot),
  '--turn-secret-file',
  over.secret ?? secretFile,
  '--ca',
  over.ca ?? caFile,
  '--skip',
  'tls,mail',
]

const check = checkOf

const show = (c: Check) => `${c.id}: ${c.status} — ${c.detail}${c.hint ? ` (hint: ${c.hint})` : ''}`

function expectOk(r: Run, ids: readonly string[]): void {
  for (const id of ids) {
    const c = check(r, id)
    expect(c.status, `${show(c)} — expected ok, this check is unrelated to the fault`).toBe('ok')
  }
}

function expectFail(r: Run, id: string, hint?: RegExp, detail?: RegExp): Check {
  const c = check(r, id)
  expect(c.status, show(c)).toBe('fail')
  expect(c.hint ?? '', `${id} fails without a hint`).not.toBe('')
  if (hint) expect(c.hint, show(c)).toMatch(hint)
  if (detail) expect(c.detail, show(c)).toMatch(detail)
  return c
}

/** Points the metadata service's TURN values at other ports for fn, then back at the shared coturn. */
async function withTurnAt(ports: { port: number; tlsPort: number }, fn: () => Promise<void>): Promise<void> {
  metadata.writeConfig({ turnPort: ports.port, turnsPort: ports.tlsPort })
  expect(await metadata.reload()).toMatch(/reloaded/)
  try {
    await fn()
  } finally {
    metadata.writeConfig({ turnPort: coturn.port, turnsPort: coturn.tlsPort })
    await metadata.reload()
  }
}

describe('the whole doctor against a healthy loopback server', () => {
  it('passes every check, in contract order, exit 0; JUnit has one testcase per check', async () => {
    const xmlFile = join(dir, 'healthy.xml')
    const r = await cli([...server(), '--junit', xmlFile])
    expect(r.code, r.stderr).toBe(0)
    expect(r.report.checks.map((c) => c.id)).toEqual(CHECK_IDS)
    // Every check is ok: /turns is served (turns_port), TLS certificates are trusted via --ca, the
    // TURN secret is known, and the stand-in answers /generate_204 and the websocket upgrade.
    for (const c of r.report.checks) {
      const skipped = c.group === 'tls' || c.group === 'mail'
      expect(c.status, `${show(c)} — expected ok on a healthy server`).toBe(skipped ? 'skip' : 'ok')
    }
    expect(r.report.status).toBe('ok')
    expect(check(r, 'imap.tls').detail).toContain(IMAP_CERT_NAME)
    expect(check(r, 'metadata.irohrelay').detail).toContain(relay.url)
    expect(check(r, 'metadata.turn').detail).toContain(`127.0.0.1:${coturn.port}`)
    expect(check(r, 'metadata.turns').detail).toContain(`127.0.0.1:${coturn.tlsPort}`)
    expect(check(r, 'relay.upgrade').detail).toMatch(/iroh-relay 0\.35/)

    const xml = await readFile(xmlFile, 'utf8')
    const cases = [...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"/g)].map((m) => [m[1], m[2]])
    expect(cases.map((c) => c[1])).toEqual(CHECK_IDS)
    expect(cases.map((c) => c[0])).toEqual(r.report.checks.map((c) => c.group))
    expect(xml).toMatch(/<testsuites name="chatmail doctor" tests="30" failures="0" errors="0" skipped="10"/)
    expect(xml).not.toContain('<failure')
  })

  it('with a chatmail.toml for this server, every check passes, whether or not it names the TURN ports right', async () => {
    // With the config the doctor connects to TURN while discovery runs; a config naming another
    // port must change nothing: the checks allocate where discovery points.
    for (const tlsPort of [coturn.tlsPort, 1]) {
      const cfg = join(dir, `chatmail-${tlsPort}.toml`)
      const toml = [
        'domain = "127.0.0.1"',
        '[turn]',
        `secret = "${SECRET}"`,
        'host = "127.0.0.1"',
        `port = ${coturn.port}`,
        `tls_port = ${tlsPort}`,
        '[iroh]',
        `relay_url = "${relay.url}"`,
        '',
      ].join('\n')
      await writeFile(cfg, toml, { mode: 0o600 })
      const r = await cli([...server(), '-c', cfg])
      const notOk = r.report.checks.filter((c) => c.status !== 'ok' && SERVED.includes(c.id))
      expect(notOk, `config with tls_port ${tlsPort}: ${JSON.stringify(notOk)}`).toEqual([])
      expect(r.code).toBe(0)
    }
  })

  it('without --ca the self-signed IMAP certificate fails imap.tls, with a hint naming --ca', async () => {
    const r = await cli([...server().filter((a, i, all) => a !== '--ca' && all[i - 1] !== '--ca'), '--only', 'imap'])
    expect(r.code).toBe(1)
    expectFail(r, 'imap.tls', /--ca/)
    expect(r.report.checks.map((c) => c.id)).toEqual(IDS.filter((id) => id.startsWith('imap.')))
  })
})

describe('TURN faults through the whole doctor', () => {
  it('coturn stopped: turn.allocate.{udp,tls} fail, tcp skips (not ours, nothing listens); the rest stays ok', async () => {
    const stopped = await startCoturn({ secret: SECRET, certName: '127.0.0.1' })
    await stopped.stop()
    await withTurnAt(stopped, async () => {
      const r = await cli([...server(), '--timeout', '3'])
      expect(r.code).toBe(1)
      expect(r.report.status).toBe('fail')
      expect(check(r, 'metadata.turn').detail).toContain(`127.0.0.1:${stopped.port}`)
      // UDP is what Delta Chat uses, and /turns advertises TLS: both fail. Without a config saying
      // we deployed TCP, a closed TCP port means "not offered".
      for (const id of ['turn.allocate.udp', 'turn.allocate.tls', 'turn.relay']) expectFail(r, id, /coturn/)
      expect(check(r, 'turn.allocate.tcp')).toMatchObject({
        status: 'skip',
        detail: expect.stringContaining('nothing listens on TCP'),
      })
      // With nobody answering, whether forged credentials are refused cannot be told.
      expect(check(r, 'turn.rejects-bad-credentials').status).not.toBe('ok')
      expectOk(r, [...LOCAL_CHECK_IDS, ...RELAY])
    })
  })

  it('coturn with another secret: allocations fail with the secret-mismatch hint; hmac fails with coturn’s secret', async () => {
    const other = await startCoturn({ secret: OTHER_SECRET, certName: '127.0.0.1' })
    try {
      const otherCa = join(dir, 'other-ca.pem')
      const otherSecret = join(dir, 'other-secret')
      await writeFile(otherCa, `${dovecot.certPem}\n${other.caPem}`)
      await writeFile(otherSecret, `${OTHER_SECRET}\n`, { mode: 0o600 })
      await withTurnAt(other, async () => {
        const r = await cli([...server({ ca: otherCa }), '--timeout', '3'])
        expect(r.code).toBe(1)
        for (const id of [...TURN_ALLOCATE, 'turn.relay']) {
          expectFail(r, id, /static-auth-secret/, /401|Unauthorized|refused/i)
        }
        // The metadata service signs with S and we were told S: the signature itself is right.
        expectOk(r, [...LOCAL_CHECK_IDS, ...RELAY])
        // Told coturn's secret instead, the doctor sees that the handed-out password is not signed with it.
        const withCoturnSecret = await cli([...server({ ca: otherCa, secret: otherSecret }), '--only', 'credentials'])
        expect(withCoturnSecret.code).toBe(1)
        expectFail(withCoturnSecret, 'turn.credential.hmac', /static-auth-secret/)
        expectOk(withCoturnSecret, ['imap.login', 'metadata.turn', 'turn.credential.expiry'])
      })
    } finally {
      await other.stop()
    }
  })

  describe('a black-holed UDP port given with --turn', () => {
    let hole: UdpSocket | undefined
    afterAll(() => hole?.close())

    it('turn.allocate.udp fails by timeout with a firewall/coturn hint, and the run finishes', async () => {
      hole = createSocket('udp4')
      let datagrams = 0
      hole.on('message', () => {
        datagrams++ // heard, never answered
      })
      hole.bind(0, '127.0.0.1')
      await once(hole, 'listening')
      const port = hole.address().port
      const r = await cli([
        '127.0.0.1',
        '--turn',
        `127.0.0.1:${port}`,
        '--turn-secret-file',
        secretFile,
        '--only',
        'turn',
        '--timeout',
        '2',
      ])
      expect(r.code).toBe(1)
      // --only turn selects every turn.* id (the credentials group too) and, with --turn and a known
      // secret, needs no IMAP: the doctor mints the credentials itself, so the credential checks skip.
      expect(r.report.checks.map((c) => c.id)).toEqual(IDS.filter((id) => id.startsWith('turn.')))
      expect(check(r, 'turn.credential.hmac')).toMatchObject({
        status: 'skip',
        detail: expect.stringContaining('minted'),
      })
      expectFail(r, 'turn.allocate.udp', /firewall/, /time|answer/i)
      expect(datagrams, 'the doctor never sent to the black hole').toBeGreaterThan(0)
    })
  })
})

describe('relay faults (--relay-url to a faulty stand-in)', () => {
  const faults: StandInFault[] = ['404', '200', 'nopong', 'noforward', 'v1']
  const standIns = new Map<StandInFault, StandInRelay>()
  beforeAll(async () => {
    const started = await Promise.all(faults.map((fault) => startStandInRelay({ fault, pingMs: 0 })))
    for (const [i, f] of faults.entries()) standIns.set(f, started[i] as StandInRelay)
  })
  afterAll(async () => {
    await Promise.allSettled([...standIns.values()].map((s) => s.stop()))
  })

  const onlyRelay = (fault: StandInFault) =>
    cli(['127.0.0.1', '--relay-url', (standIns.get(fault) as StandInRelay).url, '--only', 'relay', '--timeout', '3'])

  it('404 on /relay: relay.upgrade fails naming the 404; /ping and /generate_204 stay ok', async () => {
    const r = await onlyRelay('404')
    expect(r.code).toBe(1)
    expect(r.report.checks.map((c) => c.id)).toEqual(RELAY)
    expectFail(r, 'relay.upgrade', /proxy_pass|nginx/, /404/)
    expectOk(r, ['relay.ping', 'relay.generate204'])
  })

  it('200 instead of 101: relay.upgrade fails naming the 200', async () => {
    const r = await onlyRelay('200')
    expect(r.code).toBe(1)
    expectFail(r, 'relay.upgrade', /proxy_pass|nginx/, /200/)
    expectOk(r, ['relay.ping', 'relay.generate204'])
  })

  it('a relay that never answers the Ping: relay.handshake fails with the Ping hint', async () => {
    const r = await onlyRelay('nopong')
    expect(r.code).toBe(1)
    expectFail(r, 'relay.handshake', /Ping/, /Pong/)
    expectOk(r, ['relay.ping', 'relay.generate204', 'relay.upgrade'])
  })

  it('a 1.x relay: relay.upgrade fails mentioning 1.x and v0.35', async () => {
    const r = await onlyRelay('v1')
    expect(r.code).toBe(1)
    expectFail(r, 'relay.upgrade', /0\.35/, /1\.x/)
    expectOk(r, ['relay.ping', 'relay.generate204'])
  })

  it('a relay that drops forwarded packets, through the whole doctor: only relay.forward fails', async () => {
    const r = await cli([...server(), '--relay-url', (standIns.get('noforward') as StandInRelay).url, '--timeout', '3'])
    expect(r.code).toBe(1)
    expect(r.report.checks.map((c) => c.id)).toEqual(CHECK_IDS)
    expectFail(r, 'relay.forward', /forward/, /forward/)
    expectOk(
      r,
      SERVED.filter((id) => id !== 'relay.forward'),
    )
    // metadata.irohrelay still reports what the server advertises, and says what is checked instead.
    expect(check(r, 'metadata.irohrelay').detail).toContain('--relay-url')
  })

  describe('a black-hole relay (accepts TCP, never answers)', () => {
    let hole: Server | undefined
    const sockets: Socket[] = []
    afterAll(async () => {
      for (const s of sockets) s.destroy()
      if (hole) await new Promise((r) => hole?.close(r))
    })

    it('every relay check fails by timeout with a hint, and the run still finishes', async () => {
      hole = createServer((s) => {
        sockets.push(s)
        s.resume() // reads and drops everything, answers nothing
        s.on('error', () => undefined)
      })
      hole.listen(0, '127.0.0.1')
      await once(hole, 'listening')
      const port = (hole.address() as { port: number }).port
      const r = await cli(['127.0.0.1', '--relay-url', `http://127.0.0.1:${port}`, '--only', 'relay', '--timeout', '2'])
      expect(r.code).toBe(1)
      expect(r.report.checks.map((c) => c.id)).toEqual(RELAY)
      // /ping, /generate_204, the upgrades, the handshake, forwarding: each probe names what got no answer.
      for (const id of RELAY) expectFail(r, id, /nothing answered at 127\.0\.0\.1:\d+ in time/, /no answer within/)
      expect(sockets.length, 'the doctor never connected to the black hole').toBeGreaterThan(0)
    })
  })
})
