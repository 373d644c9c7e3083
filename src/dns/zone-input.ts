/** The zone's inputs from chatmail.toml (or, without one, what any chatmail relay publishes). Light: no DNS code. */
import { isIP } from 'node:net'
import type { Config } from '../config/schema.js'
import { DKIM, mtaStsEnabled, mtaStsIdFor } from '../server/federation.js'
import { caaIssuerFor, type DkimPublicKey, type ZoneInput } from './zone.js'

export interface ZoneSources {
  /** The server's addresses (--address, or what the host said). */
  addresses?: string[]
  dkim?: DkimPublicKey
  mtaStsId?: string
}

/** The zone's inputs for DOMAIN; `config` only when it is about DOMAIN. Without it: what any chatmail relay publishes. */
export function zoneInputFor(domain: string, config: Config | undefined, s: ZoneSources = {}): ZoneInput {
  const addresses = s.addresses ?? []
  const tls = config?.tls
  const rua = config?.mail.admin || tls?.acmeEmail || undefined
  const caa = tls?.mode === 'acme' ? caaIssuerFor(tls.acmeDirectory) : undefined
  return {
    domain,
    ipv4: addresses.filter((a) => isIP(a) === 4),
    ipv6: addresses.filter((a) => isIP(a) === 6),
    ...(s.dkim ? { dkim: s.dkim } : {}),
    dkimSelector: DKIM.selector,
    mtaSts: tls ? tls.mode !== 'self-signed' : true,
    // The id of the policy the deploy serves (a hash of it: it changes exactly when the policy does).
    ...(s.mtaStsId
      ? { mtaStsId: s.mtaStsId }
      : config && mtaStsEnabled(config)
        ? { mtaStsId: mtaStsIdFor(domain) }
        : {}),
    ...(caa ? { caaIssuer: caa } : {}),
    ...(rua ? { tlsRptAddress: rua } : {}),
    imapPort: config?.imap.port ?? 993,
  }
}
