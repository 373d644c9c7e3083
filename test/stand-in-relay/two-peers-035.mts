// Interop proof for the iroh-relay STAND-IN: REAL iroh 0.35 endpoints (@number0/iroh@0.35.0) talk
// through it. Run inside a network namespace with only loopback (the endpoint contacts n0's public
// relays at start-up) and loopback UDP dropped, so the data must go through the relay:
//
//   unshare -n sh -c 'ip link set lo up; iptables -A OUTPUT -o lo -p udp -j DROP;
//                     ip6tables -A OUTPUT -o lo -p udp -j DROP; node --import tsx two-peers-035.mts'
//
// Prints one line `RESULT {json}` and exits 0 when every part passed. STANDIN_FAULT=noforward (a negative
// control) must make it fail; GIVE_UP_MS bounds the run.
//   1. two real nodes dial each other via the stand-in and echo a random payload over a QUIC stream;
//   2. a real node dials the key of our hand-written client (src/relay/client.ts): its packets must
//      arrive as RecvPacket with the node's id as source.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import {
  buildClientInfo,
  FrameType,
  generateKeyPair,
  keyToHex,
  parseRecvPacket,
} from '../../src/protocols/iroh-relay.js'
import { relayUpgrade } from '../../src/relay/client.js'
// @ts-expect-error plain JS module without types
import { startStandIn } from './iroh-relay-standin.mjs'

const require = createRequire(import.meta.url)
const { Iroh, PublicKey } = require('@number0/iroh') as typeof import('@number0/iroh')

const ALPN = Buffer.from('chatmail-doctor/relay-probe/0')
const PAYLOAD_BYTES = Number(process.env.PAYLOAD_BYTES ?? 128 * 1024)
const GIVE_UP_MS = Number(process.env.GIVE_UP_MS ?? 40_000)

interface StandIn {
  port: number
  stats: Record<string, number>
  close(): Promise<void>
}

const result: Record<string, unknown> = { ok: false }
const finish = (code: number) => {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
  process.exit(code)
}
setTimeout(() => {
  result.error = `gave up after ${GIVE_UP_MS} ms`
  finish(1)
}, GIVE_UP_MS).unref()

const echoProtocol = {
  [ALPN.toString()]: () => ({
    accept: async (err: Error | null, conn: import('@number0/iroh').Connection) => {
      if (err) return
      try {
        const bi = await conn.acceptBi()
        const data = await bi.recv.readToEnd(4 << 20)
        await bi.send.writeAll(data)
        await bi.send.finish()
        await conn.closed()
      } catch {
        // the dialer's own connection carries no stream; it ends with "closed" at shutdown
      }
    },
  }),
}

async function twoRealPeers(relayUrl: string) {
  const opts = { nodeDiscovery: 'None', protocols: echoProtocol } as unknown as import('@number0/iroh').NodeOptions
  const a = await Iroh.memory(opts)
  const b = await Iroh.memory(opts)
  const aId = await a.net.nodeId()
  const bId = await b.net.nodeId()
  await a.net.addNodeAddr({ nodeId: bId, relayUrl })
  await b.net.addNodeAddr({ nodeId: aId, relayUrl })
  // Both dial: a node connects to a non-home relay only when it has something to send there.
  const [, ba] = await Promise.all([
    a.node.endpoint().connect({ nodeId: bId, relayUrl }, ALPN),
    b.node.endpoint().connect({ nodeId: aId, relayUrl }, ALPN),
  ])
  const data = randomBytes(PAYLOAD_BYTES)
  const bi = await ba.openBi()
  await bi.send.writeAll(data)
  await bi.send.finish()
  const echo = await bi.recv.readToEnd(4 << 20)
  const info = await b.net.remoteInfo(PublicKey.fromString(aId))
  const out = {
    aId,
    bId,
    sent: data.length,
    echoed: echo.length,
    echoMatches: Buffer.compare(echo, data) === 0,
    connType: info?.connType.type ?? 'unknown',
    connDetails: info?.connType.details ?? '',
  }
  await Promise.allSettled([a.node.shutdown(), b.node.shutdown()])
  return out
}

/** A real node dials our hand-written client's key; our client must see its packets with the node's id as source. */
async function realNodeToOurClient(relayUrl: string) {
  const keys = generateKeyPair()
  const up = await relayUpgrade(relayUrl, { variant: 'derp', timeoutMs: 5000 })
  const conn = up.connection
  if (!conn) throw new Error(`our client's upgrade got ${up.status}`)
  conn.send(FrameType.ClientInfo, buildClientInfo(keys))
  const ping = randomBytes(8)
  conn.send(FrameType.Ping, ping)
  for (;;) {
    const f = await conn.next()
    if (f.type === FrameType.Pong && f.payload.equals(ping)) break
  }
  const node = await Iroh.memory({ nodeDiscovery: 'None' } as unknown as import('@number0/iroh').NodeOptions)
  const nodeId = await node.net.nodeId()
  const ourId = keyToHex(keys.publicKey)
  // This connect cannot complete (we speak no QUIC); we only want its packets.
  node.node
    .endpoint()
    .connect({ nodeId: ourId, relayUrl }, ALPN)
    .catch(() => {})
  let packets = 0
  let bytes = 0
  let disco = 0
  let source = ''
  while (packets < 3) {
    const f = await conn.next()
    if (f.type === FrameType.Ping) conn.send(FrameType.Pong, f.payload)
    if (f.type !== FrameType.RecvPacket) continue
    const p = parseRecvPacket(f.payload)
    source = keyToHex(p.key)
    packets++
    bytes += p.data.length
    // magicsock packs datagrams as [len u16 LE][datagram]; disco datagrams start with "TS💬".
    if (p.data.subarray(2, 8).equals(Buffer.from('TS💬', 'utf8'))) disco++
  }
  conn.close()
  await node.node.shutdown().catch(() => {})
  return { nodeId, ourId, packets, bytes, disco, sourceMatches: source === nodeId }
}

async function main() {
  const relay = (await startStandIn({
    host: '127.0.0.1',
    port: 0,
    pingMs: 15_000,
    fault: process.env.STANDIN_FAULT ?? '',
  })) as StandIn
  const relayUrl = `http://127.0.0.1:${relay.port}`
  result.relayUrl = relayUrl
  result.udpBlocked = process.env.UDP_BLOCKED === '1'
  const peers = await twoRealPeers(relayUrl)
  result.twoPeers = peers
  result.relayStatsAfterPeers = { ...relay.stats }
  const mixed = await realNodeToOurClient(relayUrl)
  result.realToOurClient = mixed
  result.relayStats = relay.stats
  result.ok =
    peers.echoMatches &&
    (peers.connType === 'Relay' || peers.connType === 'Mixed') &&
    mixed.sourceMatches &&
    (relay.stats.packetsForwarded ?? 0) > 0
  await relay.close()
  finish(result.ok ? 0 : 1)
}

main().catch((err) => {
  result.error = String(err?.stack ?? err)
  finish(1)
})
