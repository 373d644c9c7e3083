/**
 * A TURN allocation kept open to relay datagrams (RFC 8656): Allocate, CreatePermission for a
 * peer (§9), Send indications to it (§11.1) and the Data indications it sends back (§11.4), and
 * the release (Refresh with LIFETIME=0). What calls need when both sides use the relay: one
 * allocation sends to the other's relayed address.
 *
 * Everything races one deadline (timeoutMs and the caller's signal) from `openRelay` on; when it
 * passes, every wait fails with a TurnError of kind 'timeout' and the connection closes.
 */
import { Deadline } from '../lib/deadline.js'
import {
  Attr,
  attr,
  getAttribute,
  getXorAddress,
  Method,
  StunDecodeError,
  type StunMessage,
  splitMessageType,
  type TransportAddress,
} from '../protocols/stun.js'
import { type Connection, open, resolve, socketError } from './connection.js'
import { Session } from './session.js'
import { type AllocateOptions, TurnError } from './types.js'

/** A datagram a peer sent to our relayed address. */
export interface RelayedDatagram {
  from: TransportAddress
  data: Buffer
}

export interface Relay {
  /** Our relayed address: what peers send to. */
  readonly relayed: TransportAddress
  /** Installs a permission for the peer's IP (any port); a refusal throws (403 Forbidden IP, say). */
  permit(peer: TransportAddress): Promise<void>
  /** Sends a datagram to the peer through the relay (a Send indication; nothing answers it). */
  send(peer: TransportAddress, data: Buffer): void
  /** Takes the first datagram (already received or still to come) that `match` accepts. */
  receive(match: (d: RelayedDatagram) => boolean): Promise<RelayedDatagram>
  /** Releases the allocation (best effort) and closes the connection. */
  close(): Promise<void>
}

export async function openRelay(o: AllocateOptions): Promise<Relay> {
  const what = `${o.transport.toUpperCase()} ${o.host}:${o.port}`
  const deadline = new Deadline({
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    timeoutError: () => new TurnError('timeout', `no answer from ${what} within ${o.timeoutMs}ms`),
    abortError: () => new TurnError('timeout', `aborted while talking to ${what}`),
  })
  let conn: Connection | undefined
  try {
    const server = await deadline.race(resolve(o.host, o.port))
    conn = await deadline.race(open(o, server, deadline.signal))
    const opened = conn
    deadline.signal.addEventListener('abort', () => opened.close(), { once: true })
    const session = new Session(conn, deadline.signal, o)
    const allocation = await session.allocate({ keep: true })
    return new OpenRelay(conn, session, deadline, allocation.relayed, o)
  } catch (err) {
    conn?.close()
    deadline.dispose()
    throw asTurnError(err, o)
  }
}

interface Waiter {
  /** Settles the wait when a datagram it accepts is there; true then. */
  check(): boolean
  stop(err: Error): void
}

class OpenRelay implements Relay {
  private readonly received: RelayedDatagram[] = []
  private readonly waiters = new Set<Waiter>()
  private closed = false

  constructor(
    private readonly conn: Connection,
    private readonly session: Session,
    private readonly deadline: Deadline,
    readonly relayed: TransportAddress,
    private readonly o: AllocateOptions,
  ) {
    conn.onIndication = (msg) => this.onIndication(msg)
  }

  async permit(peer: TransportAddress): Promise<void> {
    const asked = this.session.request(
      Method.CreatePermission,
      (id) => [attr.xorAddress(Attr.XOR_PEER_ADDRESS, peer, id)],
      `CreatePermission for ${peer.address}`,
    )
    try {
      await this.deadline.race(asked)
    } catch (err) {
      throw asTurnError(err, this.o)
    }
  }

  send(peer: TransportAddress, data: Buffer): void {
    this.session.indicate(Method.Send, (id) => [
      attr.xorAddress(Attr.XOR_PEER_ADDRESS, peer, id),
      { type: Attr.DATA, value: data },
    ])
  }

  receive(match: (d: RelayedDatagram) => boolean): Promise<RelayedDatagram> {
    const waiter: Waiter = { check: () => false, stop: () => {} }
    const found = new Promise<RelayedDatagram>((done, fail) => {
      waiter.check = () => {
        const at = this.received.findIndex(match)
        if (at < 0) return false
        done(this.received.splice(at, 1)[0] as RelayedDatagram)
        return true
      }
      waiter.stop = fail
    })
    if (this.closed) waiter.stop(new Error('the relay is closed'))
    else if (!waiter.check()) this.waiters.add(waiter)
    return this.deadline.race(found).finally(() => this.waiters.delete(waiter))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const w of this.waiters) w.stop(new Error('the relay is closed'))
    try {
      if (!this.deadline.signal.aborted) await this.deadline.race(this.session.release())
    } catch {
      // the allocation expires by itself
    } finally {
      this.conn.close()
      this.deadline.dispose()
    }
  }

  private onIndication(msg: StunMessage): void {
    if (splitMessageType(msg.type).method !== Method.Data) return
    const from = safely(() => getXorAddress(msg, Attr.XOR_PEER_ADDRESS))
    const data = getAttribute(msg, Attr.DATA)
    if (!from || !data) return
    this.received.push({ from, data })
    for (const w of [...this.waiters]) if (w.check()) this.waiters.delete(w)
  }
}

function safely<T>(f: () => T): T | undefined {
  try {
    return f()
  } catch {
    return undefined
  }
}

function asTurnError(err: unknown, o: AllocateOptions): TurnError {
  if (err instanceof TurnError) return err
  if (err instanceof StunDecodeError) return new TurnError('protocol', `malformed reply: ${err.message}`)
  return socketError(err, o)
}
