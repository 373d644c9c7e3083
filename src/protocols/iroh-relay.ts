/**
 * The iroh-relay v0.35 wire format (n0-computer/iroh tag v0.35.0, crate iroh-relay), written from the
 * protocol facts in research/protocols.md section C. Pure codec: no sockets, no timers.
 *
 * - "derp" framing (after `Upgrade: iroh derp http`): `[type u8][len u32 BE][payload]`, max 1 MiB.
 * - websocket framing: one binary message per frame, `[type u8][payload]`, no length.
 * - ClientInfo: MAGIC "RELAY🔑" + 32-byte ed25519 public key + 64-byte signature + postcard(ClientInfo{version: 3}).
 *
 * v0.91+/1.x relays speak a different protocol (subprotocol `iroh-relay-v1`, ServerChallenge first);
 * only what is needed to recognise one lives here.
 */
export * from './iroh-relay-frames.js'
export * from './iroh-relay-http.js'
