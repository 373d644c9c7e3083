/**
 * A TURN client that does one thing: Allocate a relayed address over udp, tcp or tls with
 * long-term (TURN REST) credentials, then release it (RFC 8656 §7, RFC 8489 §9.2).
 *
 * Allocate without credentials → 401 with REALM and NONCE → Allocate again (new transaction id)
 * with USERNAME, REALM, NONCE, MESSAGE-INTEGRITY, FINGERPRINT → on 438 retry once with the new
 * nonce → success: XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS, LIFETIME → Refresh LIFETIME=0.
 * Never hangs: timeoutMs and the signal abort everything and close the socket.
 */

import { Deadline } from '../lib/deadline.js'
import { StunDecodeError } from '../protocols/stun.js'
import { type Connection, open, resolve, socketError } from './connection.js'
import { Session } from './session.js'
import { type AllocateOptions, type AllocateResult, type Credentials, TurnError } from './types.js'

export type { PeerTls as TlsInfo } from '../lib/tls.js'
export type { TransportAddress } from '../protocols/stun.js'
export * from './types.js'

export async function allocate(o: AllocateOptions): Promise<AllocateResult> {
  checkOptions(o)
  const deadline = turnDeadline(o)
  let conn: Connection | undefined
  try {
    const server = await deadline.race(resolve(o.host, o.port))
    conn = await deadline.race(open(o, server, deadline.signal))
    const session = new Session(conn, deadline.signal, o)
    const result = await session.allocate()
    return { ...result, server, ...(conn.tls ? { tls: conn.tls } : {}) }
  } catch (err) {
    throw explain(err, o, conn)
  } finally {
    conn?.close()
    deadline.dispose()
  }
}

/** An Allocate begun before the credentials are known: connected, and challenged (401, REALM, NONCE). */
export interface PendingAllocation {
  /** Sends the authenticated Allocate (and the release); `timeoutMs` and `signal` count from here. */
  complete(creds: Credentials, limits: { timeoutMs: number; signal?: AbortSignal }): Promise<AllocateResult>
  /** Drops the connection (nothing was allocated yet). */
  close(): void
}

export type BeginOptions = Omit<AllocateOptions, 'username' | 'password'>

/**
 * Does what an Allocate needs before credentials: DNS, the connection (the TLS handshake too) and
 * the unauthenticated request that brings REALM and NONCE. A caller that learns the credentials
 * later (the doctor, from IMAP METADATA) then needs one round trip, not three.
 */
export async function beginAllocation(o: BeginOptions): Promise<PendingAllocation> {
  const noCreds = { ...o, username: '', password: '' }
  checkOptions(noCreds)
  const deadline = turnDeadline(noCreds)
  let conn: Connection | undefined
  try {
    const server = await deadline.race(resolve(o.host, o.port))
    conn = await deadline.race(open(noCreds, server, deadline.signal))
    const session = new Session(conn, deadline.signal, noCreds)
    const first = await session.challengeFirst()
    const opened = conn
    return {
      close: () => opened.close(),
      complete: async (creds, limits) => {
        const limited = { ...noCreds, timeoutMs: limits.timeoutMs, signal: limits.signal }
        const finish = turnDeadline(limited)
        finish.signal.addEventListener('abort', () => opened.close(), { once: true })
        try {
          const result = await session.continueWith(first, creds, finish.signal)
          return { ...result, server, ...(opened.tls ? { tls: opened.tls } : {}) }
        } catch (err) {
          throw explain(err, limited, opened)
        } finally {
          opened.close()
          finish.dispose()
        }
      },
    }
  } catch (err) {
    conn?.close()
    throw explain(err, noCreds, conn)
  } finally {
    deadline.dispose()
  }
}

function checkOptions(o: AllocateOptions): void {
  if (!o.host) throw new TypeError('allocate: host is empty')
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new TypeError(`allocate: bad port ${o.port}`)
  if (!(o.timeoutMs > 0)) throw new TypeError(`allocate: timeoutMs must be positive, not ${o.timeoutMs}`)
}

// ---------------------------------------------------------------------------------------------
// The deadline of one exchange: one timer plus the caller's signal; every wait races against it.

function turnDeadline(o: AllocateOptions): Deadline {
  const what = `${o.transport.toUpperCase()} ${o.host}:${o.port}`
  return new Deadline({
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    timeoutError: () => new TurnError('timeout', `no answer from ${what} within ${o.timeoutMs}ms`),
    abortError: () => new TurnError('timeout', `aborted while talking to ${what}`),
  })
}

/** Turns whatever went wrong into a TurnError, naming the last malformed reply seen on a timeout. */
function explain(err: unknown, o: AllocateOptions, conn: Connection | undefined): TurnError {
  if (err instanceof TurnError) {
    if (err.kind === 'timeout' && conn?.lastJunk) {
      return new TurnError('timeout', `${err.message} (ignored a malformed reply: ${conn.lastJunk})`)
    }
    return err
  }
  if (err instanceof StunDecodeError) return new TurnError('protocol', `malformed reply: ${err.message}`)
  return socketError(err, o)
}
