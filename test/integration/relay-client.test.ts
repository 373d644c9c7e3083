/**
 * Our relay client (src/relay/client.ts) against the iroh-relay STAND-IN (a test double for the
 * iroh-relay v0.35.0 binary, proven against real iroh 0.35 nodes in relay-standin-proof.test.ts)
 * and its injected faults. Everything runs on loopback.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  detectRelayVersion,
  probeRelayVersion,
  RelayError,
  relayForward,
  relayGenerate204,
  relayHandshake,
  relayPing,
  relayUpgrade,
} from '../../src/relay/client.js'
import { type StandInFault, type StandInRelay, startStandInRelay } from '../helpers/relay.js'

const opts = { timeoutMs: 3000 }

async function expectRelayError(p: Promise<unknown>, kind: RelayError['kind'], message?: RegExp): Promise<RelayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RelayError)
  const re = err as RelayError
  expect(re.kind).toBe(kind)
  if (message) expect(re.message).toMatch(message)
  return re
}

function withStandIn(fault?: StandInFault): { relay: () => StandInRelay } {
  let relay: StandInRelay
  beforeAll(async () => {
    relay = await startStandInRelay(fault ? { fault } : {})
  })
  afterAll(async () => {
    await relay?.stop()
  })
  return { relay: () => relay }
}

describe('healthy stand-in', () => {
  const s = withStandIn()

  it('GET /ping → 200', async () => {
    const r = await relayPing(s.relay().url, opts)
    expect(r.status).toBe(200)
    expect(r.headers['strict-transport-security']).toMatch(/max-age=63072000/)
    expect(r.tls).toBeUndefined()
  })

  it('GET /generate_204 echoes the challenge', async () => {
    const r = await relayGenerate204(s.relay().url, opts)
    expect(r).toMatchObject({ status: 204, ok: true, reason: 'ok' })
    expect(r.response).toBe(`response ${r.challenge}`)
  })

  it.each(['derp', 'websocket'] as const)('upgrade (%s) → 101 with a live connection', async (variant) => {
    const r = await relayUpgrade(s.relay().url, { ...opts, variant })
    try {
      expect(r.status).toBe(101)
      expect(r.subprotocol).toBeUndefined()
      expect(r.connection).toBeDefined()
      if (variant === 'derp') expect(r.headers.upgrade).toBe('iroh derp http')
      else expect(r.headers['sec-websocket-accept']).toBeDefined()
    } finally {
      r.connection?.close()
    }
  })

  it.each(['derp', 'websocket'] as const)('handshake (%s): ClientInfo + Ping → Pong', async (variant) => {
    const r = await relayHandshake(s.relay().url, { ...opts, variant })
    expect(r.variant).toBe(variant)
    expect(r.nodeId).toMatch(/^[0-9a-f]{64}$/)
    expect(r.rttMs).toBeGreaterThanOrEqual(0)
  })

  it.each(['derp', 'websocket'] as const)('forward (%s): A → B and B → A with the sender key', async (variant) => {
    const before = (await relayGenerate204(s.relay().url, opts)).ok
    expect(before).toBe(true)
    const r = await relayForward(s.relay().url, { ...opts, variant, size: 1500 })
    expect(r).toMatchObject({ variant, packets: 2, bytes: 3000 })
    expect(r.a).not.toBe(r.b)
  })

  it('detects 0.35', async () => {
    expect(await detectRelayVersion(s.relay().url, opts)).toBe('0.35')
    expect((await probeRelayVersion(s.relay().url, opts)).evidence).toMatch(/without subprotocol/)
  })

  it('an already aborted signal fails at once as a timeout', async () => {
    await expectRelayError(relayPing(s.relay().url, { ...opts, signal: AbortSignal.abort() }), 'timeout', /aborted/)
  })
})

describe('stand-in with STANDIN_FAULT=nopong', () => {
  const s = withStandIn('nopong')
  it('handshake fails with a timeout naming the missing Pong', async () => {
    await expectRelayError(relayHandshake(s.relay().url, { timeoutMs: 1500 }), 'timeout', /Pong/)
  })
})

describe('stand-in with STANDIN_FAULT=noforward', () => {
  const s = withStandIn('noforward')
  it('handshake still works', async () => {
    await expect(relayHandshake(s.relay().url, opts)).resolves.toMatchObject({ variant: 'derp' })
  })
  it('forward fails: the packet never arrives', async () => {
    await expectRelayError(relayForward(s.relay().url, { timeoutMs: 1500 }), 'timeout', /did not forward/)
  })
})

describe.each(['404', '200'] as const)('stand-in with STANDIN_FAULT=%s', (fault) => {
  const s = withStandIn(fault)
  it.each(['derp', 'websocket'] as const)('upgrade (%s) gets no 101', async (variant) => {
    const r = await relayUpgrade(s.relay().url, { ...opts, variant })
    expect(r.status).toBe(Number(fault))
    expect(r.connection).toBeUndefined()
  })
  it('handshake fails with kind http', async () => {
    await expectRelayError(relayHandshake(s.relay().url, opts), 'http', new RegExp(`answered ${fault}`))
  })
  it('version is unknown', async () => {
    expect(await detectRelayVersion(s.relay().url, opts)).toBe('unknown')
  })
})

describe('stand-in with STANDIN_FAULT=v1 (behaves like a 1.x relay)', () => {
  const s = withStandIn('v1')
  it('is detected as 1.x, with the ServerChallenge seen', async () => {
    const v = await probeRelayVersion(s.relay().url, opts)
    expect(v.version).toBe('1.x')
    expect(v.evidence).toMatch(/iroh-relay-v1 and sent a ServerChallenge/)
  })
  it('the 0.35 derp upgrade is refused', async () => {
    const r = await relayUpgrade(s.relay().url, { ...opts, variant: 'derp' })
    expect(r.status).not.toBe(101)
  })
})

describe('servers that are not relays', () => {
  let blackHole: net.Server
  const held: net.Socket[] = []
  let closedPort = 0

  beforeAll(async () => {
    // Accepts, reads (so it sees the client's FIN) and never answers.
    blackHole = net.createServer((sock) => {
      held.push(sock)
      sock.resume()
    })
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r))
    const tmp = net.createServer()
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r))
    closedPort = (tmp.address() as net.AddressInfo).port
    await new Promise((r) => tmp.close(r))
  })
  afterAll(async () => {
    for (const sock of held) sock.destroy()
    await new Promise((r) => blackHole.close(r))
  })
  const url = () => `http://127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`

  it.each([
    ['ping', () => relayPing(url(), { timeoutMs: 800 })],
    ['generate204', () => relayGenerate204(url(), { timeoutMs: 800 })],
    ['upgrade', () => relayUpgrade(url(), { timeoutMs: 800, variant: 'derp' })],
    ['handshake', () => relayHandshake(url(), { timeoutMs: 800 })],
    ['forward', () => relayForward(url(), { timeoutMs: 800 })],
    ['version', () => detectRelayVersion(url(), { timeoutMs: 800 })],
  ])('black-holed port: %s → timeout error, and its socket is closed', async (_name, probe) => {
    const before = held.length
    await expectRelayError(probe(), 'timeout', /no answer within 800 ms/)
    const mine = held.slice(before)
    expect(mine.length).toBeGreaterThan(0)
    await Promise.all(mine.map((sock) => (sock.closed ? undefined : new Promise((r) => sock.once('close', r)))))
  })

  it('a caller signal cancels a hanging probe', async () => {
    const ac = new AbortController()
    const p = relayHandshake(url(), { timeoutMs: 60_000, signal: ac.signal })
    setTimeout(() => ac.abort(), 50)
    await expectRelayError(p, 'timeout', /aborted/)
  })

  it('closed port → refused', async () => {
    await expectRelayError(relayPing(`http://127.0.0.1:${closedPort}`, opts), 'refused', /refused/)
  })

  it('a non-http scheme is refused up front', async () => {
    await expectRelayError(relayPing('ftp://127.0.0.1/', opts), 'protocol', /scheme/)
  })
})

describe('https in front of the stand-in (TLS terminated by a node:tls proxy, like nginx)', () => {
  const s = withStandIn()
  let dir = ''
  let ca = ''
  let proxy: tls.Server
  let url = ''

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relay-tls-'))
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'],
        ...['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      ],
      { stdio: 'ignore' },
    )
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8')
    const upstream = new URL(s.relay().url)
    proxy = tls.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: ca }, (client) => {
      const up = net.connect(Number(upstream.port), upstream.hostname)
      client.pipe(up).pipe(client)
      client.on('error', () => up.destroy())
      up.on('error', () => client.destroy())
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    url = `https://localhost:${(proxy.address() as net.AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((r) => proxy?.close(r))
    rmSync(dir, { recursive: true, force: true })
  })

  it('an untrusted certificate is a tls error', async () => {
    await expectRelayError(relayPing(url, opts), 'tls', /localhost/)
  })

  it('with the CA added it verifies, and the relay works over TLS', async () => {
    const r = await relayPing(url, { ...opts, ca })
    expect(r.status).toBe(200)
    expect(r.tls).toMatchObject({ authorized: true })
    const h = await relayHandshake(url, { ...opts, ca })
    expect(h.tls?.authorized).toBe(true)
    await expect(relayForward(url, { ...opts, ca })).resolves.toMatchObject({ packets: 2 })
  })

  it('insecure connects anyway and reports the certificate as not valid', async () => {
    const r = await relayPing(url, { ...opts, insecure: true })
    expect(r.status).toBe(200)
    expect(r.tls?.authorized).toBe(false)
    expect(r.tls?.error).toBeTruthy()
  })
})
