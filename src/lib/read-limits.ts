/**
 * How much the doctor reads from a server, at most. A chatmail server's answers are small (a
 * greeting, a capability list, metadata values of a few hundred bytes, a few relay frames); a
 * server that sends far more is broken or hostile, and the check fails saying so instead of
 * buffering without end.
 */
export const READ_LIMITS = {
  /** One line of a line protocol read by hand (the IMAP greeting, the answer to STARTTLS). */
  line: 8 * 1024,
  /** Everything an IMAP server may send before the line the doctor waits for. */
  preamble: 64 * 1024,
  /** One IMAP line through imapflow (its default is 1 GiB). */
  imapLine: 64 * 1024,
  /** One IMAP literal through imapflow (its default is 1 GiB); metadata values are far smaller. */
  imapLiteral: 64 * 1024,
  /** One whole IMAP response, literals included (imapflow's default is 2 GiB). */
  imapResponse: 256 * 1024,
  /** An HTTP response head. */
  httpHead: 32 * 1024,
  /** Everything one relay connection may deliver (a probe exchanges a few kilobytes). */
  relayConnection: 2 * 1024 * 1024,
} as const

/** A server sent more than the doctor reads. */
export class ReadLimitError extends Error {
  constructor(
    readonly what: string,
    readonly limit: number,
  ) {
    super(
      `${what}: the server sent more than ${formatBytes(limit)}, more than any chatmail server does; stopped reading`,
    )
    this.name = 'ReadLimitError'
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} bytes`
}
