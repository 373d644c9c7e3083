/**
 * Does anything accept a TCP connection on host:port? Used to tell "the server does not offer this"
 * (nothing listens, or a firewall drops it) from "the server offers this and it is broken", so a
 * check can skip the first and fail the second.
 */
import { connect } from 'node:net'
import { classifySocketError } from '../lib/socket-errors.js'

export type Reachability = 'open' | 'refused' | 'silent' | 'unresolved'

export function tcpReachable(
  host: string,
  port: number,
  o: { timeoutMs: number; signal?: AbortSignal },
): Promise<Reachability> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    let timer: NodeJS.Timeout | undefined
    const done = (r: Reachability) => {
      clearTimeout(timer)
      o.signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(r)
    }
    const onAbort = () => done('silent')
    timer = setTimeout(onAbort, o.timeoutMs)
    if (o.signal?.aborted) return onAbort()
    o.signal?.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => done('open'))
    socket.once('error', (err) => {
      const failure = classifySocketError(err).failure
      if (failure === 'unresolved') done('unresolved')
      else if (failure === 'timeout' || failure === 'unreachable') done('silent')
      else done('refused')
    })
  })
}

/** "nothing listens on TCP 5349 of host" / "no answer on …" */
export function describeUnreachable(r: Exclude<Reachability, 'open'>, what: string): string {
  switch (r) {
    case 'refused':
      return `nothing listens on ${what}`
    case 'silent':
      return `nothing answers on ${what} (no listener, or a firewall drops it)`
    default:
      return `${what} does not resolve`
  }
}
