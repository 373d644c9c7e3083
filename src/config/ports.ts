/**
 * The ports of the dovecot stack: those it always uses, and those the config sets. A configured port
 * must differ from every other one, or two daemons would fight over it (dovecot would render two
 * listeners on 143 for imap.port = 143; coturn on 25 would keep postfix from starting).
 */
import * as v from 'valibot'

/** A port number key of chatmail.toml (valibot schema). */
export const port = (what: string) =>
  v.pipe(
    v.number(`${what} must be a port number`),
    v.integer(`${what} must be a whole number`),
    v.minValue(1, `${what} must be from 1 to 65535`),
    v.maxValue(65535, `${what} must be from 1 to 65535`),
  )

export interface PortUse {
  /** Where the port comes from: a config key, or what always listens there. */
  name: string
  first: number
  last: number
  /** Only UDP (coturn's relay range); a UDP-only range collides only with ports that also use UDP. */
  udpOnly?: boolean
}

/** What always listens on a chatmail host (and sshd, which the deploy itself needs). */
export const FIXED_PORTS: readonly PortUse[] = [
  { name: "sshd's port 22", first: 22, last: 22 },
  { name: "postfix's SMTP port 25", first: 25, last: 25 },
  { name: "nginx's HTTP port 80", first: 80, last: 80 },
  { name: "dovecot's IMAP (STARTTLS) port 143", first: 143, last: 143 },
  { name: "nginx's HTTPS port 443", first: 443, last: 443 },
  { name: "postfix's submissions port 465", first: 465, last: 465 },
  { name: "postfix's submission port 587", first: 587, last: 587 },
  { name: "coturn's relay ports 49152-65535 (UDP)", first: 49152, last: 65535, udpOnly: true },
]

export interface ConfiguredPort {
  key: string
  port: number
  /** Whether the daemon also listens on UDP there (coturn's TURN and TLS/DTLS ports). */
  udp: boolean
}

const overlaps = (a: ConfiguredPort, b: PortUse) => a.port >= b.first && a.port <= b.last && (a.udp || !b.udpOnly)

/** The first clash, as one sentence; undefined when every port is distinct. */
export function portClash(ports: ConfiguredPort[]): string | undefined {
  for (const [i, p] of ports.entries()) {
    const fixed = FIXED_PORTS.find((f) => overlaps(p, f))
    if (fixed) {
      return `${p.key} = ${p.port} collides with ${fixed.name}; pick a port the stack does not use (${describeFixed()})`
    }
    const other = ports.slice(0, i).find((q) => q.port === p.port)
    if (other) return `${p.key} = ${p.port} collides with ${other.key} = ${other.port}; each service needs its own port`
  }
  return undefined
}

function describeFixed(): string {
  return FIXED_PORTS.map((f) => (f.first === f.last ? String(f.first) : `${f.first}-${f.last}/udp`)).join(', ')
}
