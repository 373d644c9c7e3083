/**
 * Relay to relay on the coturn the deploy installs (templates/coturn/turnserver.conf and
 * relay-firewall.nft, issue 25 item 1), on a real coturn on loopback, where the host's own
 * address is 127.0.0.1: two allocations of the server reach each other through it, both ways;
 * what an allocation sends to any other port of the host (a UDP service, coturn's own listening
 * port) is dropped. The control instance, without the firewall table, shows that these probes do
 * see such a datagram arrive.
 */

import { execFile } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  Attr,
  decodeMessage,
  encodeMessage,
  getXorAddress,
  Method,
  messageType,
  newTransactionId,
  type TransportAddress,
} from '../../src/protocols/stun.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'
import { openRelay, type Relay, type RelayedDatagram } from '../../src/turn/relay.js'
import { type Coturn, startCoturn } from '../helpers/coturn.js'

const run = promisify(execFile)
const relays: Relay[] = []
const listeners: Socket[] = []

async function relayOn(coturn: Coturn, user?: string): Promise<Relay> {
  const cred = mintTurnCredential(coturn.secret, { ttlSeconds: 600, nowMs: Date.now(), user })
  const r = await openRelay({
    host: coturn.host,
    port: coturn.port,
    transport: 'udp',
    username: cred.username,
    password: cred.password,
    timeoutMs: 10_000,
  })
  relays.push(r)
  return r
}

/** Two allocations that permit each other. */
async function pair(coturn: Coturn): Promise<[Relay, Relay]> {
  const [a, b] = await Promise.all([relayOn(coturn), relayOn(coturn)])
  await Promise.all([a.permit(b.relayed), b.permit(a.relayed)])
  return [a, b]
}

const from = (peer: TransportAddress, text: string) => (d: RelayedDatagram) =>
  d.from.address === peer.address && d.from.port === peer.port && d.data.toString() === text

/** A UDP service on the host's address, outside the relay ports (the kernel picks a port above 32767). */
async function udpService(): Promise<{ port: number; got: Buffer[] }> {
  const socket = createSocket('udp4')
  listeners.push(socket)
  const got: Buffer[] = []
  socket.on('message', (m) => got.push(m))
  await new Promise<void>((done) => socket.bind(0, '127.0.0.1', () => done()))
  return { port: socket.address().port, got }
}

/** A STUN Binding request: coturn answers it on its listening port, wherever it comes from. */
const bindingRequest = () =>
  encodeMessage({ type: messageType(Method.Binding, 'request'), transactionId: newTransactionId(), attributes: [] })

/** Packets the instance's firewall table dropped so far. */
const dropped = async (table: string): Promise<number> => {
  const { stdout } = await run('nft', ['list', 'table', 'inet', table])
  return [...stdout.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
}

afterAll(async () => {
  await Promise.all(relays.map((r) => r.close()))
  for (const s of listeners) s.close()
})

describe('coturn as deployed (turnserver.conf and its firewall table)', () => {
  let coturn: Coturn
  beforeAll(async () => {
    coturn = await startCoturn({ firewall: true })
  }, 60_000)
  afterAll(() => coturn?.stop())
  const table = () => coturn.firewallTable as string

  it('relays from one allocation to another and back (relay to relay)', async () => {
    const [a, b] = await pair(coturn)
    expect(a.relayed.address).toBe('127.0.0.1')
    a.send(b.relayed, Buffer.from('ping'))
    expect((await b.receive(from(a.relayed, 'ping'))).data.toString()).toBe('ping')
    b.send(a.relayed, Buffer.from('pong'))
    expect((await a.receive(from(b.relayed, 'pong'))).data.toString()).toBe('pong')
  })

  // A drop makes coturn's send fail (EPERM), and coturn 4.6.1 then closes that relay socket: the
  // allocation that tried is done for; the others go on (the last test).
  it("drops what an allocation sends to a UDP service on the host's address outside the relay ports", async () => {
    const [a] = await pair(coturn)
    const service = await udpService()
    expect(service.port < coturn.relayMin || service.port > coturn.relayMax).toBe(true)
    const before = await dropped(table())
    a.send({ address: '127.0.0.1', port: service.port, family: 'IPv4' }, Buffer.from('to DNS, say'))
    await expect.poll(() => dropped(table())).toBeGreaterThan(before)
    expect(service.got).toEqual([])
  })

  it("drops what an allocation sends to coturn's own listening port", async () => {
    const [a] = await pair(coturn)
    const before = await dropped(table())
    // coturn would answer a Binding request that reached it; a permits 127.0.0.1, so it would hear it.
    const answer = a
      .receive((d) => d.from.port === coturn.port)
      .then(
        () => 'answered',
        () => 'closed',
      )
    a.send({ address: '127.0.0.1', port: coturn.port, family: 'IPv4' }, bindingRequest())
    await expect.poll(() => dropped(table())).toBeGreaterThan(before)
    await a.close()
    expect(await answer).toBe('closed')
  })

  it('goes on relaying between the other allocations', async () => {
    const [a, b] = await pair(coturn)
    a.send(b.relayed, Buffer.from('still there'))
    expect((await b.receive(from(a.relayed, 'still there'))).data.toString()).toBe('still there')
  })

  // coturn reserves a session's whole max-bps from bps-capacity at Allocate: the template's
  // former bps-capacity=50000000 with max-bps=1000000 refused the 51st allocation (486
  // Allocation Bandwidth Quota Reached), 25 calls on a whole server (bench/turn-calls.ts found it).
  it('keeps 60 allocations open at once (more than bps-capacity / max-bps allowed), relay to relay between the last two', async () => {
    const open: Relay[] = []
    for (let i = 0; i < 60; i++) open.push(await relayOn(coturn, `call${Math.floor(i / 2)}`))
    expect(new Set(open.map((r) => r.relayed.port)).size).toBe(60)
    const [a, b] = open.slice(-2) as [Relay, Relay]
    await Promise.all([a.permit(b.relayed), b.permit(a.relayed)])
    a.send(b.relayed, Buffer.from('the 60th'))
    expect((await b.receive(from(a.relayed, 'the 60th'))).data.toString()).toBe('the 60th')
    await Promise.all(open.map((r) => r.close()))
  }, 60_000)
})

describe('the control: the same coturn without the firewall table', () => {
  let coturn: Coturn
  beforeAll(async () => {
    coturn = await startCoturn()
  }, 60_000)
  afterAll(() => coturn?.stop())

  it('lets an allocation reach a UDP service and coturn itself (what the table is for)', async () => {
    const [a] = await pair(coturn)
    const service = await udpService()
    a.send({ address: '127.0.0.1', port: service.port, family: 'IPv4' }, Buffer.from('to DNS, say'))
    a.send({ address: '127.0.0.1', port: coturn.port, family: 'IPv4' }, bindingRequest())
    const answer = await a.receive((d) => d.from.port === coturn.port)
    const msg = decodeMessage(answer.data)
    expect(getXorAddress(msg, Attr.XOR_MAPPED_ADDRESS)).toEqual(a.relayed)
    await expect.poll(() => service.got.map(String)).toEqual(['to DNS, say'])
  })
})
