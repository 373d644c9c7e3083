/**
 * The default ports of the stack, named in one place: the config's defaults, the doctor,
 * turn-cred and chatmail-metadata use these.
 */
export const DEFAULT_PORTS = {
  /** IMAP with implicit TLS (what Delta Chat tries first). */
  imap: 993,
  /** IMAP with STARTTLS. */
  imapStarttls: 143,
  /** TURN over UDP and TCP. */
  turn: 3478,
  /** TURN over TLS. */
  turnTls: 5349,
  /** iroh-relay's own HTTP listener (behind nginx, or public for self-signed servers). */
  irohRelay: 3340,
  https: 443,
  http: 80,
} as const
