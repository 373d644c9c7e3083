/** The doctor's check ids, in the contract order (DESIGN.md "How doctor works"; `chatmail doctor --help`). */
export const CHECK_IDS = [
  'imap.tls',
  'imap.login',
  'imap.metadata.capability',
  'metadata.irohrelay',
  'metadata.turn',
  'metadata.turns',
  'turn.credential.hmac',
  'turn.credential.expiry',
  'turn.allocate.udp',
  'turn.allocate.tcp',
  'turn.allocate.tls',
  'turn.rejects-bad-credentials',
  'relay.ping',
  'relay.generate204',
  'relay.upgrade',
  'relay.handshake',
  'relay.forward',
] as const

/** The ids of the groups that need only IMAP (imap, discovery, credentials). */
export const LOCAL_CHECK_IDS = CHECK_IDS.slice(0, 8)
