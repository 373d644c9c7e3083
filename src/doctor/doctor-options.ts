/**
 * What one doctor run is told: the server, the account, trust, overrides and the host. Its own
 * file (model.ts re-exports it) so that what a run holds open (run-state.ts, imap-session.ts,
 * turn-prefetch.ts) reads it without importing the check model, which imports the run state.
 */
import type { NameServer } from '../dns/query.js'
import type { ZoneInput } from '../dns/zone.js'
import type { ServerDescription } from '../server/services.js'
import type { HostProbe } from './host-probe.js'
import type { TlsEndpoint } from './tls-ports.js'

export interface DoctorOptions {
  domain: string
  imapHost: string
  /** 993 = implicit TLS; 143 = STARTTLS. */
  imapPort: number
  /** STARTTLS instead of implicit TLS (default: imapPort === 143). */
  imapStarttls?: boolean
  user?: string
  password?: string
  /** The server's TURN secret, when known: enables turn.credential.hmac. */
  turnSecret?: string
  /** Extra CA certificate(s), PEM. */
  ca?: string
  /** Accept any certificate; TLS checks then warn. */
  insecure: boolean
  /** Overrides of what discovery found. */
  relayUrl?: string
  /**
   * The relay URL the server should advertise (the config's iroh.relay_url). The relay checks start
   * with it at once, without waiting for discovery; metadata.irohrelay fails if the server
   * advertises another.
   */
  expectedRelayUrl?: string
  /**
   * Where the config says TURN runs. The doctor connects there while discovery runs; the TURN
   * checks still allocate with the discovered credentials, at the discovered server.
   */
  expectedTurn?: { host: string; port: number; tlsPort: number }
  turnOverride?: { host: string; port: number }
  /** TLS port of TURN when metadata has no /turns (default 5349). */
  turnTlsPort?: number
  /**
   * The config for this domain says chatmail deployed this server: everything its stack offers
   * (TURN over TCP and TLS, every TLS endpoint) must work, so "not offered" is a failure, not a skip.
   */
  deployed?: boolean
  /** Ports of TLS endpoints not on their usual port (--tls-port NAME=PORT), by endpoint name. */
  tlsPorts?: Partial<Record<TlsEndpoint, number>>
  /** The host over SSH (--ssh, or deploy host's connection): enables the host checks. */
  host?: HostProbe
  /**
   * What runs on the host (units, ports, disks), from the config for this domain (default ports
   * without one): what the host checks expect.
   */
  server?: ServerDescription
  timeoutMs: number
  /** The zone the dns group expects (from chatmail.toml for the domain; else what any chatmail relay publishes). */
  dnsZone?: ZoneInput
  /** Ask this DNS server instead of the domain's authoritative nameservers (--nameserver). */
  nameserver?: NameServer
  /** mail.signup creates an account through POST /new (and logs in with it) instead of only asking. */
  signup?: boolean
}
