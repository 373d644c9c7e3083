/**
 * The doctor's turn.relay (issue 25 item 2) on real coturns on loopback: ok on the template as
 * deployed (its own addresses allowed as peers), failing with the 403 and the fix on one that
 * denies them (the template before issue 25) and with the datagram lost on a host whose firewall
 * drops it, and ending within its timeout at a black hole.
 */
import { execFile } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { turnRelayChecks } from '../../src/doctor/checks/turn-relay.js'
import type { CheckContext, Findings } from '../../src/doctor/model.js'
import { RunState } from '../../src/doctor/run-state.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'
import { type Coturn, startCoturn } from '../helpers/coturn.js'

const run = promisify(execFile)
const check = turnRelayChecks.find((c) => c.id === 'turn.relay')!

function context(findings: Findings, timeoutMs = 5000, tls?: Coturn): CheckContext {
  const tlsOptions = tls ? { ca: tls.caPem, turnTlsPort: tls.tlsPort } : {}
  return {
    options: { domain: 'localhost', imapHost: 'localhost', imapPort: 993, insecure: false, timeoutMs, ...tlsOptions },
    findings,
    state: new RunState(),
    signal: AbortSignal.timeout(timeoutMs),
    timeoutMs,
    result: () => Promise.reject(new Error('not used')),
  }
}

const findingsFor = (host: string, port: number, secret: string): Findings => ({
  turn: { host, port, ...mintTurnCredential(secret, { ttlSeconds: 600, nowMs: Date.now() }) },
})

describe('turn.relay', () => {
  let deployed: Coturn
  let udpOnly: Coturn
  let denying: Coturn
  beforeAll(async () => {
    ;[deployed, udpOnly, denying] = await Promise.all([
      startCoturn({ certName: '127.0.0.1' }),
      startCoturn({ udpOnly: true }),
      startCoturn({ ownAddresses: [] }),
    ])
  }, 60_000)
  afterAll(async () => {
    await Promise.all([deployed?.stop(), udpOnly?.stop(), denying?.stop()])
  })

  it('is a stable id in the turn group, after metadata.turn', () => {
    expect(turnRelayChecks.map((c) => [c.id, c.group, c.after])).toEqual([['turn.relay', 'turn', ['metadata.turn']]])
  })

  it('ok on the coturn the deploy installs: a datagram each way over UDP, TCP and TLS, round trips in the detail', async () => {
    const out = await check.run(context(findingsFor(deployed.host, deployed.port, deployed.secret), 5000, deployed))
    expect(out.status, out.detail).toBe('ok')
    const pair = '127\\.0\\.0\\.1:\\d+ and 127\\.0\\.0\\.1:\\d+ relayed a datagram each way, round trip \\d+ ms'
    expect(out.detail).toMatch(new RegExp(`^UDP: ${pair}; TCP: ${pair}; TLS: ${pair}$`))
  })

  it('ok over UDP on a server that offers only UDP, saying why TCP and TLS were not tried', async () => {
    const out = await check.run(context(findingsFor(udpOnly.host, udpOnly.port, udpOnly.secret)))
    expect(out.status, out.detail).toBe('ok')
    expect(out.detail).toMatch(
      /^UDP: 127\.0\.0\.1:\d+ and 127\.0\.0\.1:\d+ relayed a datagram each way, round trip \d+ ms; /,
    )
    expect(out.detail).toMatch(
      /; TCP not tried \(.*refused the connection.*; see turn\.allocate\.tcp\); TLS not tried \(/,
    )
  })

  it('fails with the 403 and the fix on a coturn that denies its own addresses as peers', async () => {
    const out = await check.run(context(findingsFor(denying.host, denying.port, denying.secret)))
    expect(out.status).toBe('fail')
    expect(out.detail).toMatch(
      /^over UDP, the TURN server refused the peer \(403 Forbidden IP\): the allocation 127\.0\.0\.1:\d+/,
    )
    expect(out.detail).toMatch(/two users who both need the relay cannot call/)
    expect(out.hint).toMatch(/allowed-peer-ip=127\.0\.0\.1 in turnserver\.conf/)
  })

  describe('on a host whose firewall drops UDP between the relay ports', () => {
    let blocked: Coturn
    beforeAll(async () => {
      blocked = await startCoturn({ firewall: true, udpOnly: true })
      // On top of the deployed table: what the turnserver user relays to this host at all is dropped.
      const ports = `${blocked.relayMin}-${blocked.relayMax}`
      const rule = `meta skuid turnserver udp sport ${ports} fib daddr type local drop`
      await run('nft', [
        'add',
        'rule',
        'inet',
        blocked.firewallTable as string,
        'relayed-to-this-host',
        ...rule.split(' '),
      ])
    }, 60_000)
    afterAll(() => blocked?.stop())

    it('fails within its timeout: permissions granted, the datagram lost, with the firewall hint', async () => {
      const out = await check.run(context(findingsFor(blocked.host, blocked.port, blocked.secret), 1500))
      expect(out.status).toBe('fail')
      expect(out.detail).toMatch(
        /^over UDP, both permissions were granted, but nothing 127\.0\.0\.1:\d+ sent reached 127\.0\.0\.1:\d+ \(\d+ datagrams\): two users who both need the relay cannot call$/,
      )
      expect(out.hint).toMatch(/firewall/)
    })
  })

  it('skips without credentials', async () => {
    expect(await check.run(context({}))).toMatchObject({ status: 'skip' })
  })

  describe('at a black hole (a UDP port that swallows everything)', () => {
    let hole: Socket
    let datagrams = 0
    beforeAll(async () => {
      hole = createSocket('udp4')
      hole.on('message', () => datagrams++)
      await new Promise<void>((done) => hole.bind(0, '127.0.0.1', () => done()))
    })
    afterAll(() => hole.close())

    it('fails within its timeout, with the firewall hint', async () => {
      const out = await check.run(context(findingsFor('127.0.0.1', hole.address().port, 'any-secret'), 1500))
      expect(out.status).toBe('fail')
      expect(out.detail).toMatch(/no answer from UDP 127\.0\.0\.1:\d+ within \d+ms/)
      expect(out.hint).toMatch(/firewall/)
      expect(datagrams).toBeGreaterThan(0)
    })
  })
})
