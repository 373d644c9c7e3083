/**
 * The coturn the deploy installs (templates/coturn/turnserver.conf, issue 9 item 6), proven on a
 * real coturn on loopback: no TCP relays (RFC 6062), and no peers in ranges that lead to
 * addresses the template denies (IPv4-mapped IPv6, NAT64, 6to4, Teredo, ...). A permission only
 * installs a rule in coturn: no packet is ever sent to these peers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Coturn, startCoturn } from '../helpers/coturn.js'
import { TRANSPORT_TCP, TurnProbe } from '../helpers/turn-probe.js'

let coturn: Coturn
const probes: TurnProbe[] = []
// Each probe its own username (the expiry, in seconds), unless a test shares one on purpose:
// coturn counts user-quota per username.
const probe = async (nowMs = Date.now() + 1000 * probes.length) => {
  const p = await TurnProbe.open(coturn.host, coturn.port, coturn.secret, nowMs)
  probes.push(p)
  return p
}

beforeAll(async () => {
  coturn = await startCoturn()
}, 60_000)
afterAll(async () => {
  for (const p of probes) p.close()
  await coturn?.stop()
})

describe('coturn as deployed', () => {
  it('refuses a TCP relay allocation (RFC 6062), while a UDP one works', async () => {
    const tcp = await (await probe()).allocate({ transport: TRANSPORT_TCP })
    expect(tcp).toMatchObject({ ok: false, code: 442 })
    const udp = await (await probe()).allocate()
    expect(udp.ok, `${udp.code} ${udp.reason}`).toBe(true)
    expect(udp.relayed?.address).toBe('127.0.0.1')
  })

  it.each([
    ['::ffff:10.1.2.3', 'IPv4-mapped private address'],
    ['::ffff:127.0.0.2', 'IPv4-mapped loopback address'],
    ['64:ff9b::a01:203', 'NAT64 prefix'],
    ['2002:a01:203::1', '6to4'],
    ['2001:0:a01:203::1', 'Teredo'],
  ])('refuses a permission for %s (%s)', async (peer) => {
    const p = await probe()
    const alloc = await p.allocate({ family: 6 })
    expect(alloc.ok, `${alloc.code} ${alloc.reason}`).toBe(true)
    expect(alloc.relayed?.address).toBe('::1')
    expect(await p.createPermission(peer)).toMatchObject({ ok: false, code: 403 })
    // The same allocation may reach an allowed peer (here the loopback one the test instance allows).
    expect(await p.createPermission('::1')).toMatchObject({ ok: true })
  })

  it('gives one username at most 12 allocations at a time (user-quota)', async () => {
    const now = Date.now() + 3_600_000
    for (let i = 0; i < 12; i++) {
      const a = await (await probe(now)).allocate()
      expect(a.ok, `allocation ${i + 1}: ${a.code} ${a.reason}`).toBe(true)
    }
    expect(await (await probe(now)).allocate()).toMatchObject({ ok: false, code: 486 })
    expect((await (await probe(now + 1000)).allocate()).ok).toBe(true)
  })

  it('refuses a permission for 240.0.0.0/4 on an IPv4 relay', async () => {
    const p = await probe()
    expect((await p.allocate()).ok).toBe(true)
    expect(await p.createPermission('240.1.2.3')).toMatchObject({ ok: false, code: 403 })
    expect(await p.createPermission('127.0.0.1')).toMatchObject({ ok: true })
  })
})
