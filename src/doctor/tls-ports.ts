/** The TLS endpoints the doctor checks (tls.NAME), and `--tls-port NAME=PORT`. No I/O: the CLI loads it at start. */
import { usageError } from '../lib/errors.js'

export const TLS_ENDPOINTS = ['imap', 'submission', 'submission-starttls', 'https', 'turns'] as const
export type TlsEndpoint = (typeof TLS_ENDPOINTS)[number]

/** `--tls-port NAME=PORT`, repeatable or comma-separated: where an endpoint listens when not on its usual port. */
export function parseTlsPorts(values: readonly string[] | undefined): Partial<Record<TlsEndpoint, number>> {
  const ports: Partial<Record<TlsEndpoint, number>> = {}
  for (const value of (values ?? []).flatMap((v) => v.split(','))) {
    const m = /^([a-z-]+)=(\d+)$/.exec(value.trim())
    const port = Number(m?.[2])
    const name = m?.[1] as TlsEndpoint | undefined
    if (!m || !name || !TLS_ENDPOINTS.includes(name) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw usageError(
        `--tls-port ${value} is not NAME=PORT`,
        `NAME is one of ${TLS_ENDPOINTS.join(', ')}; e.g. submission=10465`,
      )
    }
    ports[name] = port
  }
  return ports
}
