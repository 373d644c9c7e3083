/**
 * When the config says where TURN should be, the doctor connects and fetches the nonce for each
 * transport while IMAP discovery is still running. The allocation checks then finish with the
 * discovered credentials in one round trip, if discovery names that same server; otherwise, or
 * when the early connection failed, they allocate from scratch. An optimisation only: every
 * result and error still comes from an allocation with the discovered credentials.
 */
import { isIP } from 'node:net'
import { beginAllocation, type PendingAllocation, type TurnTransport } from '../turn/client.js'
import type { DoctorOptions } from './doctor-options.js'

const key = (transport: TurnTransport, host: string, port: number) => `${transport} ${host}:${port}`

/** The early TURN connections of one run (none unless started). */
export class TurnPrefetch {
  readonly #early = new Map<string, Promise<PendingAllocation | undefined>>()

  /** Connects to the config's TURN server on every transport (nothing without one or with --turn). */
  start(options: DoctorOptions): void {
    const e = options.expectedTurn
    if (!e || options.turnOverride) return
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
      this.#early.set(key(transport, e.host, port), pending)
    }
  }

  /** The early allocation for this server, taken (each is used once), or undefined. */
  async take(transport: TurnTransport, host: string, port: number): Promise<PendingAllocation | undefined> {
    const k = key(transport, host, port)
    const pending = this.#early.get(k)
    this.#early.delete(k)
    return pending
  }

  /** Closes what no check used (discovery named another server, or the check did not run). */
  async close(): Promise<void> {
    const left = [...this.#early.values()]
    this.#early.clear()
    for (const pending of left) (await pending)?.close()
  }
}
