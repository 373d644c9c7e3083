/**
 * When the config says where TURN should be, the doctor connects and fetches the nonce for each
 * transport while IMAP discovery is still running. The allocation checks then finish with the
 * discovered credentials in one round trip, if discovery names that same server; otherwise, or
 * when the early connection failed, they allocate from scratch. An optimisation only: every
 * result and error still comes from an allocation with the discovered credentials.
 */
import { isIP } from 'node:net'
import { beginAllocation, type PendingAllocation, type TurnTransport } from '../turn/client.js'
import type { DoctorOptions, Facts } from './model.js'

type Early = Map<string, Promise<PendingAllocation | undefined>>
const runs = new WeakMap<Facts, Early>()

const key = (transport: TurnTransport, host: string, port: number) => `${transport} ${host}:${port}`

export function startTurnPrefetch(facts: Facts, options: DoctorOptions): void {
  const e = options.expectedTurn
  if (!e || options.turnOverride) return
  const early: Early = new Map()
  for (const transport of ['udp', 'tcp', 'tls'] as const) {
    const port = transport === 'tls' ? e.tlsPort : e.port
    const pending = beginAllocation({
      host: e.host,
      port,
      transport,
      timeoutMs: options.timeoutMs,
      ...(transport === 'tls'
        ? {
            tls: {
              ...(options.ca ? { ca: options.ca } : {}),
              rejectUnauthorized: !options.insecure,
              ...(isIP(e.host) ? {} : { servername: e.host }),
            },
          }
        : {}),
    }).catch(() => undefined)
    early.set(key(transport, e.host, port), pending)
  }
  runs.set(facts, early)
}

/** The early allocation for this server, taken (each is used once), or undefined. */
export async function takeTurnPrefetch(
  facts: Facts,
  transport: TurnTransport,
  host: string,
  port: number,
): Promise<PendingAllocation | undefined> {
  const early = runs.get(facts)
  const k = key(transport, host, port)
  const pending = early?.get(k)
  if (!pending) return undefined
  early?.delete(k)
  return pending
}

/** Closes what no check used (discovery named another server, or the check did not run). */
export async function closeTurnPrefetch(facts: Facts): Promise<void> {
  const early = runs.get(facts)
  runs.delete(facts)
  for (const pending of early?.values() ?? []) (await pending)?.close()
}
