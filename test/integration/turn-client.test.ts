/**
 * allocate() and the doctor's turn checks against a real coturn on loopback, plus the ways a
 * TURN server can fail to answer (black holes, closed ports) — all must end within the timeout.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXPIRED_AGO_SECONDS, expiredCredential, tamperPassword, turnChecks } from '../../src/doctor/checks/turn.js'
import type { CheckContext, CheckOutcome, DoctorOptions, Findings } from '../../src/doctor/model.js'
import { RunState } from '../../src/doctor/run-state.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'
import { type AllocateOptions, allocate, beginAllocation, TurnError } from '../../src/turn/client.js'
import { type Coturn, startCoturn } from '../helpers/coturn.js'
import { type ExpiryBlindTurn, startExpiryBlindTurn } from '../helpers/expiry-blind-turn.js'

let coturn: Coturn

beforeAll(async () => {
  coturn = await startCoturn({ certName: 'localhost' })
})
afterAll(async () => {
  await coturn?.stop()
})

const fresh = () => mintTurnCredential(coturn.secret, { ttlSeconds: 600, nowMs: Date.now() })

function opts(over: Partial<AllocateOptions> = {}): AllocateOptions {
  const cred = fresh()
  return {
    host: coturn.host,
    port: coturn.port,
    transport: 'udp',
    username: cred.username,
    password: cred.password,
    timeoutMs: 5000,
    ...over,
  }
}

async function allocateError(o: AllocateOptions): Promise<TurnError> {
  const err = await allocate(o).then(
    (r) => new Error(`expected a failure, got ${JSON.stringify(r)}`),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TurnError)
  return err as TurnError
}

describe('allocate() against coturn', () => {
  for (const transport of ['udp', 'tcp', 'tls'] as const) {
    it(`gets a relayed address over ${transport} and releases it`, async () => {
      const r = await allocate(
        opts({
          transport,
          port: transport === 'tls' ? coturn.tlsPort : coturn.port,
          tls: { ca: coturn.caPem, servername: coturn.certName },
        }),
      )
      expect(r.relayed.address).toBe('127.0.0.1')
      expect(r.relayed.port).toBeGreaterThanOrEqual(coturn.relayMin)
      expect(r.relayed.port).toBeLessThanOrEqual(coturn.relayMax)
      expect(r.mapped?.address).toBe('127.0.0.1')
      expect(r.realm).toBe(coturn.realm)
      expect(r.lifetime).toBeGreaterThan(0)
      expect(r.released).toBe(true)
      expect(r.software).toBeUndefined() // the deployed coturn (no-software-attribute) names no version
      expect(r.rtts).toBe(3) // challenge, authenticated Allocate, Refresh 0
      if (transport === 'tls') expect(r.tls).toMatchObject({ authorized: true, subject: coturn.certName })
      else expect(r.tls).toBeUndefined()
    })
  }

  it('a wrong password is refused with kind auth (401)', async () => {
    const o = opts()
    const err = await allocateError({ ...o, password: tamperPassword(o.password) })
    expect(err.kind).toBe('auth')
    expect(err.code).toBe(401)
  })

  it('credentials signed with another secret are refused over tcp too', async () => {
    const cred = mintTurnCredential('not-the-secret-of-this-server', { ttlSeconds: 600, nowMs: Date.now() })
    const err = await allocateError(opts({ transport: 'tcp', username: cred.username, password: cred.password }))
    expect(err.kind).toBe('auth')
  })

  it('expired credentials are refused', async () => {
    const cred = mintTurnCredential(coturn.secret, { ttlSeconds: 60, nowMs: Date.now() - 3600_000 })
    const err = await allocateError(opts({ username: cred.username, password: cred.password }))
    expect(err.kind).toBe('auth')
  })

  it('TLS: a certificate not valid for the name is refused before any credential is sent', async () => {
    const err = await allocateError(
      opts({ transport: 'tls', port: coturn.tlsPort, tls: { ca: coturn.caPem, servername: 'turn.example.org' } }),
    )
    expect(err.kind).toBe('tls')
    expect(err.message).toMatch(/not trusted: ERR_TLS_CERT_ALTNAME_INVALID/)
  })

  it('TLS: an untrusted self-signed certificate is refused, unless rejectUnauthorized is false', async () => {
    const err = await allocateError(opts({ transport: 'tls', port: coturn.tlsPort, tls: { servername: 'localhost' } }))
    expect(err.kind).toBe('tls')
    expect(err.message).toMatch(/SELF_SIGNED/)
    const r = await allocate(
      opts({ transport: 'tls', port: coturn.tlsPort, tls: { servername: 'localhost', rejectUnauthorized: false } }),
    )
    expect(r.relayed.address).toBe('127.0.0.1')
    expect(r.tls?.authorized).toBe(false)
    expect(r.tls?.error).toMatch(/SELF_SIGNED/)
  })
})

describe('servers that do not answer: every failure ends within the timeout', () => {
  let udpHole: UdpSocket
  let tcpHole: Server
  const held: Socket[] = []
  let closedPort: number

  beforeAll(async () => {
    udpHole = createSocket('udp4')
    await new Promise<void>((r) => udpHole.bind(0, '127.0.0.1', r))
    tcpHole = createServer((s) => {
      held.push(s) // accepts and never replies
    })
    await new Promise<void>((r) => tcpHole.listen(0, '127.0.0.1', r))
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    closedPort = (probe.address() as { port: number }).port
    await new Promise<void>((r) => probe.close(() => r()))
  })
  afterAll(async () => {
    for (const s of held) s.destroy()
    udpHole?.close()
    await new Promise<void>((r) => (tcpHole ? tcpHole.close(() => r()) : r()))
  })

  it('UDP port that swallows everything: timeout (and it retransmitted)', async () => {
    let received = 0
    udpHole.on('message', () => received++)
    const port = (udpHole.address() as { port: number }).port
    const err = await allocateError(opts({ port, timeoutMs: 1800 }))
    expect(err.kind).toBe('timeout')
    expect(err.message).toMatch(/no answer from UDP 127\.0\.0\.1:\d+ within 1800ms/)
    expect(received).toBeGreaterThanOrEqual(2) // sent at 0 and retransmitted at 500 ms (and 1500 ms)
  })

  it('TCP listener that accepts and never replies: timeout', async () => {
    const port = (tcpHole.address() as { port: number }).port
    const err = await allocateError(opts({ transport: 'tcp', port, timeoutMs: 1000 }))
    expect(err.kind).toBe('timeout')
  })

  it('TLS to a listener that never does the handshake: timeout', async () => {
    const port = (tcpHole.address() as { port: number }).port
    const err = await allocateError(opts({ transport: 'tls', port, timeoutMs: 1000 }))
    expect(err.kind).toBe('timeout')
  })

  it('closed TCP port: refused', async () => {
    const err = await allocateError(opts({ transport: 'tcp', port: closedPort }))
    expect(err.kind).toBe('refused')
  })

  it('closed UDP port: refused (the connected socket hears ICMP port unreachable)', async () => {
    const err = await allocateError(opts({ port: closedPort, timeoutMs: 1500 }))
    expect(err.kind).toBe('refused')
  })

  it('an aborted signal ends the allocation with kind timeout', async () => {
    const port = (udpHole.address() as { port: number }).port
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 200)
    const err = await allocateError(opts({ port, timeoutMs: 60_000, signal: controller.signal }))
    expect(err.kind).toBe('timeout')
    expect(err.message).toMatch(/^aborted while talking to UDP 127\.0\.0\.1:\d+$/)
  })

  it('an unresolvable host: unreachable', async () => {
    const err = await allocateError(opts({ host: 'no-such-host.invalid' }))
    expect(err.kind).toBe('unreachable')
  })
})

describe('doctor turn checks against coturn', () => {
  const byId = (id: string) => {
    const def = turnChecks.find((c) => c.id === id)
    if (!def) throw new Error(`no check ${id}`)
    return def
  }

  function context(facts: Findings, options: Partial<DoctorOptions> = {}): CheckContext {
    return {
      options: {
        domain: 'localhost',
        imapHost: 'localhost',
        imapPort: 993,
        insecure: false,
        timeoutMs: 5000,
        turnTlsPort: coturn.tlsPort,
        ...options,
      },
      findings: facts,
      state: new RunState(),
      signal: new AbortController().signal,
      timeoutMs: 5000,
      result: () => Promise.reject(new Error('not used')),
    }
  }

  const turnFindings = (host = 'localhost', secret = coturn.secret): Findings => {
    const cred = mintTurnCredential(secret, { ttlSeconds: 600, nowMs: Date.now() })
    return { turn: { host, port: coturn.port, ...cred } }
  }

  const run = (id: string, ctx: CheckContext): Promise<CheckOutcome> => byId(id).run(ctx)

  it('declares the stable ids, group and dependencies', () => {
    expect(turnChecks.map((c) => c.id)).toEqual([
      'turn.allocate.udp',
      'turn.allocate.tcp',
      'turn.allocate.tls',
      'turn.rejects-bad-credentials',
      'turn.rejects-expired-credentials',
    ])
    expect(new Set(turnChecks.map((c) => c.group))).toEqual(new Set(['turn']))
    // tls reads /turns itself: a skipped metadata.turns (absent, or = /turn) must not skip it.
    expect(byId('turn.allocate.tls').after).toEqual(['metadata.turn'])
    expect(byId('turn.allocate.udp').after).toEqual(['metadata.turn'])
  })

  it('udp, tcp, tls: ok with the relayed address', async () => {
    const ctx = context(turnFindings(), { ca: coturn.caPem })
    for (const id of ['turn.allocate.udp', 'turn.allocate.tcp', 'turn.allocate.tls']) {
      const out = await run(id, ctx)
      expect(out, id).toMatchObject({ status: 'ok' })
      expect(out.detail, id).toMatch(/^relayed 127\.0\.0\.1:\d+ \(lifetime \d+s, released\)$/)
    }
  })

  it('tls uses facts.turns when discovery found one', async () => {
    const facts = turnFindings()
    // facts.turns names a port where nothing listens, options.turnTlsPort the working one.
    const turns = { ...(facts.turn as NonNullable<Findings['turn']>), port: 9 }
    const out = await run('turn.allocate.tls', context({ ...facts, turns }, { ca: coturn.caPem }))
    expect(out.status).toBe('fail')
    expect(out.detail).toMatch(/^TLS localhost:9: /)
    expect(out.hint).toMatch(/tls-listening-port=9/)
  })

  it('tls with a certificate that is not trusted: fail with a hint; warn with --insecure', async () => {
    const failed = await run('turn.allocate.tls', context(turnFindings()))
    expect(failed.status).toBe('fail')
    expect(failed.hint).toMatch(/certificate valid for localhost/)
    const insecure = await run('turn.allocate.tls', context(turnFindings(), { insecure: true }))
    expect(insecure.status).toBe('warn')
    expect(insecure.detail).toMatch(/^relayed 127\.0\.0\.1:\d+ .*not valid for localhost/)
  })

  it('credentials from another secret: fail with the secret-mismatch hint', async () => {
    const out = await run('turn.allocate.udp', context(turnFindings('localhost', 'another-secret-0123456789')))
    expect(out.status).toBe('fail')
    expect(out.detail).toMatch(/401/)
    expect(out.hint).toMatch(/static-auth-secret differs from the secret that minted the credentials/)
  })

  it('nothing listening: fail with a firewall / is-coturn-running hint, within the timeout', async () => {
    const facts = turnFindings()
    const dead = { turn: { ...(facts.turn as NonNullable<Findings['turn']>), port: 9 } }
    const ctx = { ...context(dead, { deployed: true }), timeoutMs: 1200 }
    const udp = await run('turn.allocate.udp', ctx)
    expect(udp.status).toBe('fail')
    expect(udp.hint).toMatch(/UDP 9|coturn running/)
    const tcp = await run('turn.allocate.tcp', ctx)
    expect(tcp.status).toBe('fail')
    expect(tcp.hint).toMatch(/listening-port=9/)
    // On a server our config did not deploy, nothing on TCP means TURN over TCP is not offered.
    const notOurs = await run('turn.allocate.tcp', { ...context(dead), timeoutMs: 1200 })
    expect(notOurs).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(/^nothing listens on TCP localhost:9/),
    })
  })

  it('rejects-bad-credentials: ok, because coturn refuses the forged password', async () => {
    const out = await run('turn.rejects-bad-credentials', context(turnFindings()))
    expect(out).toEqual({ status: 'ok', detail: 'a forged password was refused (401 Unauthorized)' })
  })

  it('without discovered credentials every check skips and says why', async () => {
    for (const def of turnChecks) {
      const out = await def.run(context({}))
      expect(out.status).toBe('skip')
      expect(out.detail).toMatch(/discovery found no TURN credentials/)
    }
  })
})

describe('rejects-expired-credentials', () => {
  let blind: ExpiryBlindTurn
  beforeAll(async () => {
    blind = await startExpiryBlindTurn(coturn.secret)
  })
  afterAll(async () => {
    await blind?.stop()
  })

  const def = () => turnChecks.find((c) => c.id === 'turn.rejects-expired-credentials') as (typeof turnChecks)[number]
  const ctxFor = (host: string, port: number, turnSecret?: string): CheckContext => {
    const cred = mintTurnCredential(coturn.secret, { ttlSeconds: 600, nowMs: Date.now() })
    return {
      options: {
        domain: 'x',
        imapHost: 'x',
        imapPort: 993,
        insecure: false,
        timeoutMs: 5000,
        ...(turnSecret ? { turnSecret } : {}),
      },
      findings: { turn: { host, port, ...cred }, turnSource: 'metadata' },
      state: new RunState(),
      signal: new AbortController().signal,
      timeoutMs: 5000,
      result: () => Promise.reject(new Error('not used')),
    }
  }

  it('a real coturn refuses a correctly signed credential that expired an hour ago: ok', async () => {
    const out = await def().run(ctxFor(coturn.host, coturn.port, coturn.secret))
    expect(out).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/^a credential that expired at .* was refused \(401\)$/),
    })
  })

  it('the expiry-blind test double allocates with it: fail with a hint', async () => {
    const before = blind.granted()
    const out = await def().run(ctxFor(blind.host, blind.port, coturn.secret))
    expect(out.status).toBe('fail')
    expect(out.detail).toMatch(/allocated with a correctly signed credential that expired at/)
    expect(out.hint).toMatch(/refuse usernames whose timestamp has passed/)
    expect(blind.granted()).toBe(before + 1)
  })

  it('the double is honest about the rest: it refuses a forged password, so only the expiry is blind', async () => {
    const bad = turnChecks.find((c) => c.id === 'turn.rejects-bad-credentials') as (typeof turnChecks)[number]
    expect((await bad.run(ctxFor(blind.host, blind.port))).status).toBe('ok')
  })

  it('without the secret, or with another secret than the server signs with: skip, saying why', async () => {
    expect(await def().run(ctxFor(coturn.host, coturn.port))).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(/no TURN secret known/),
    })
    expect(await def().run(ctxFor(blind.host, blind.port, 'another-secret-0123456789'))).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(/inconclusive: the known TURN secret does not sign/),
    })
  })

  it('keeps the `:name` suffix of the server’s usernames', () => {
    const handed = { host: 'h', port: 1, username: '1767225600:alice', password: 'x', expires: 1767225600 }
    const e = expiredCredential('s', handed, 1_800_000_000_000)
    expect(e.username).toBe(`${1_800_000_000 - EXPIRED_AGO_SECONDS}:alice`)
  })
})

describe('rejects-bad-credentials against a server without authentication', () => {
  let open: Coturn
  beforeAll(async () => {
    open = await startCoturn({ noAuth: true })
  })
  afterAll(async () => {
    await open?.stop()
  })

  it('fails with a security hint when a forged password is accepted', async () => {
    const def = turnChecks.find((c) => c.id === 'turn.rejects-bad-credentials')
    const cred = mintTurnCredential('whatever-secret-123', { ttlSeconds: 600, nowMs: Date.now() })
    const out = await def?.run({
      options: { domain: 'x', imapHost: 'x', imapPort: 993, insecure: false, timeoutMs: 5000 },
      findings: { turn: { host: open.host, port: open.port, ...cred } },
      state: new RunState(),
      signal: new AbortController().signal,
      timeoutMs: 5000,
      result: () => Promise.reject(new Error('not used')),
    })
    expect(out?.status).toBe('fail')
    expect(out?.detail).toMatch(/allocated with a forged password/)
    expect(out?.hint).toMatch(/use-auth-secret/)
  })
})

describe('beginAllocation(): connect and get the nonce first, credentials later', () => {
  for (const transport of ['udp', 'tcp', 'tls'] as const) {
    it(`completes over ${transport} with credentials given afterwards`, async () => {
      const pending = await beginAllocation({
        host: coturn.host,
        port: transport === 'tls' ? coturn.tlsPort : coturn.port,
        transport,
        timeoutMs: 5000,
        tls: { ca: coturn.caPem, servername: coturn.certName },
      })
      const cred = fresh()
      const r = await pending.complete({ username: cred.username, password: cred.password }, { timeoutMs: 5000 })
      expect(r.relayed.address).toBe('127.0.0.1')
      expect(r.realm).toBe(coturn.realm)
      expect(r.released).toBe(true)
      if (transport === 'tls') expect(r.tls?.authorized).toBe(true)
    })
  }
  it('refuses forged credentials with kind auth', async () => {
    const pending = await beginAllocation({ host: coturn.host, port: coturn.port, transport: 'udp', timeoutMs: 5000 })
    const cred = fresh()
    const err = await pending
      .complete({ username: cred.username, password: tamperPassword(cred.password) }, { timeoutMs: 5000 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(TurnError)
    expect((err as TurnError).kind).toBe('auth')
  })
  it('fails with a timeout on a black-holed UDP port', async () => {
    const hole = createSocket('udp4')
    await new Promise<void>((ok) => hole.bind(0, '127.0.0.1', ok))
    try {
      const port = (hole.address() as { port: number }).port
      const err = await beginAllocation({ host: '127.0.0.1', port, transport: 'udp', timeoutMs: 1200 }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect((err as TurnError).kind).toBe('timeout')
    } finally {
      hole.close()
    }
  })
})
