/**
 * The iroh-relay client's public face. Probes of an iroh-relay (v0.35 protocol, what Delta Chat's iroh 0.35 speaks), written on raw
 * net/tls sockets: Node's http client does not handle the `Upgrade: iroh derp http` 101.
 *
 * Every probe takes `{ timeoutMs, signal?, ca?, insecure? }`, never outlives its timeout, and closes
 * every socket it opened (except the connection `relayUpgrade` hands back on a 101, which the caller closes).
 * Failures are `RelayError`s with a `kind` the doctor maps to a hint.
 */

export type { PeerTls as TlsInfo } from '../lib/tls.js'
export {
  RelayConnection,
  RelayError,
  type RelayErrorKind,
  type RelayProbeOptions,
  relayEndpoint,
} from './connection.js'
export {
  detectRelayVersion,
  type Generate204Result,
  type HttpProbeResult,
  probeRelayVersion,
  type RelayVersion,
  relayGenerate204,
  relayPing,
  type VersionProbe,
} from './probes.js'
export {
  type ForwardOptions,
  type ForwardResult,
  type HandshakeOptions,
  type HandshakeResult,
  relayForward,
  relayHandshake,
  relayUpgrade,
  type UpgradeOptions,
  type UpgradeResult,
} from './session.js'
