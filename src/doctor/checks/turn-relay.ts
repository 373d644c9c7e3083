/**
 * turn.relay: what a call needs when both sides can only use the relay. Two allocations with the
 * credentials the server hands out, each permitting the other's relayed address, and a datagram
 * each way between them through the server; over UDP, and over TCP and TLS where the server lets
 * us allocate. Judged the same on every server: it is what calls need, whoever deployed it.
 */
import { randomBytes } from 'node:crypto'
import type { TurnMetadata } from '../../protocols/metadata-values.js'
import type { TransportAddress } from '../../protocols/stun.js'
import { TurnError, type TurnTransport } from '../../turn/client.js'
import { openRelay, type Relay, type RelayedDatagram } from '../../turn/relay.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip } from '../model.js'
import { allocateOptions, hintFor, NO_CREDENTIALS, target } from './turn.js'

/** How often the first side sends its datagram again until the answer comes (UDP may lose one). */
const RESEND_MS = 250

const CANNOT_CALL = 'two users who both need the relay cannot call'

/** The fix for a refused peer, naming the server's own address the other allocation got. */
export const allowOwnAddresses = (address: string) =>
  `allow the server's own relayed addresses as peers: allowed-peer-ip=${address} in turnserver.conf (a denied-peer-ip range holds it; also every other address of the host and both sides of external-ip), with a firewall rule that keeps relayed datagrams off the host's other ports; \`chatmail deploy host\` sets up both`

const LOST_HINT =
  "relayed datagrams between two allocations are lost: does a firewall drop UDP between the server's own addresses on the relay ports (min-port..max-port)? Behind NAT (external-ip), the NAT must send packets to its public address back in (hairpinning)"

const show = (a: TransportAddress) => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`)

const isFrom = (peer: TransportAddress, prefix: string) => (d: RelayedDatagram) =>
  d.from.address === peer.address && d.from.port === peer.port && d.data.toString().startsWith(prefix)

/** One pair of allocations over one transport: what it showed, or why it was not tried. */
type PairOutcome = { ok: string } | { fail: CheckOutcome } | { untried: string }

const TRANSPORTS: readonly TurnTransport[] = ['udp', 'tcp', 'tls']

/**
 * A pair over every transport at once. UDP is what Delta Chat uses: a UDP pair that cannot even
 * allocate fails. A TCP or TLS pair that cannot allocate is only noted (turn.allocate.tcp and
 * .tls judge whether the server must offer them); once allocated, every pair must relay.
 */
async function relayCheck(ctx: CheckContext): Promise<CheckOutcome> {
  if (!ctx.findings.turn) return skip(NO_CREDENTIALS)
  const outcomes = await Promise.all(TRANSPORTS.map((transport) => pairOver(ctx, transport)))
  const parts: string[] = []
  for (const [i, o] of outcomes.entries()) {
    const name = (TRANSPORTS[i] as TurnTransport).toUpperCase()
    if ('fail' in o) return o.fail
    parts.push('ok' in o ? `${name}: ${o.ok}` : `${name} not tried (${o.untried})`)
  }
  return ok(parts.join('; '))
}

async function pairOver(ctx: CheckContext, transport: TurnTransport): Promise<PairOutcome> {
  const t = target(ctx, transport)
  if (!t) return { untried: NO_CREDENTIALS }
  const name = transport.toUpperCase()
  const where = `${name} ${t.host}:${t.port}`
  const relays: Relay[] = []
  try {
    const opts = allocateOptions(ctx, t, transport)
    const opened = await Promise.allSettled([openRelay(opts), openRelay(opts)])
    for (const r of opened) if (r.status === 'fulfilled') relays.push(r.value)
    const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) {
      if (transport !== 'udp' && failed.reason instanceof TurnError) {
        return { untried: `${failed.reason.message}; see turn.allocate.${transport}` }
      }
      return { fail: failure(failed.reason, where, transport, t) }
    }
    const [a, b] = relays as [Relay, Relay]
    const refused = await permitEachOther(a, b, name)
    if (refused) return { fail: refused }
    return await exchange(a, b, name)
  } catch (err) {
    return { fail: failure(err, where, transport, t) }
  } finally {
    await Promise.all(relays.map((r) => r.close()))
  }
}

/** Both permissions; a fail outcome when the server refuses one. */
async function permitEachOther(a: Relay, b: Relay, name: string): Promise<CheckOutcome | undefined> {
  const asked = await Promise.allSettled([a.permit(b.relayed), b.permit(a.relayed)])
  for (const [i, r] of asked.entries()) {
    if (r.status === 'fulfilled') continue
    const err = r.reason
    if (!(err instanceof TurnError) || err.code !== 403) throw err
    const [self, peer] = i === 0 ? [a, b] : [b, a]
    const reason = /\b403 (.*)$/.exec(err.message)?.[1] ?? 'Forbidden'
    return fail(
      `over ${name}, the TURN server refused the peer (403 ${reason}): the allocation ${show(self.relayed)} may not send to the other's relayed address ${show(peer.relayed)}, its own; ${CANNOT_CALL}`,
      allowOwnAddresses(peer.relayed.address),
    )
  }
  return undefined
}

/** A datagram from a to b and b's answer back; the round trip counts from the send that got through. */
async function exchange(a: Relay, b: Relay, name: string): Promise<PairOutcome> {
  const tag = randomBytes(6).toString('hex')
  const sentAt: number[] = []
  let heard = false
  const send = () => {
    sentAt.push(performance.now())
    a.send(b.relayed, Buffer.from(`ping ${tag} ${sentAt.length - 1}`))
  }
  // b answers every ping it gets (an answer may be lost too) until a has one.
  const answering = (async () => {
    for (;;) {
      const ping = await b.receive(isFrom(a.relayed, `ping ${tag} `))
      heard = true
      b.send(a.relayed, Buffer.from(`pong ${tag} ${ping.data.toString().split(' ')[2]}`))
    }
  })()
  answering.catch(() => {})
  send()
  const timer = setInterval(send, RESEND_MS)
  try {
    const pong = await a.receive(isFrom(b.relayed, `pong ${tag} `))
    const seq = Number(pong.data.toString().split(' ')[2])
    const rtt = Math.round(performance.now() - (sentAt[seq] ?? 0))
    return { ok: `${show(a.relayed)} and ${show(b.relayed)} relayed a datagram each way, round trip ${rtt} ms` }
  } catch (err) {
    if (!(err instanceof TurnError && err.kind === 'timeout')) throw err
    const lost = heard
      ? `the answer from ${show(b.relayed)} never came back to ${show(a.relayed)}`
      : `nothing ${show(a.relayed)} sent reached ${show(b.relayed)} (${sentAt.length} datagrams)`
    return { fail: fail(`over ${name}, both permissions were granted, but ${lost}: ${CANNOT_CALL}`, LOST_HINT) }
  } finally {
    clearInterval(timer)
  }
}

function failure(err: unknown, where: string, transport: TurnTransport, t: TurnMetadata): CheckOutcome {
  if (!(err instanceof TurnError)) throw err
  return fail(`${where}: ${err.message}`, hintFor(err, transport, t))
}

export const turnRelayChecks: CheckDef[] = [
  {
    id: 'turn.relay',
    group: 'turn',
    title: 'TURN relays between two allocations',
    after: ['metadata.turn'],
    run: relayCheck,
  },
]
