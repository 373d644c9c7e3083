/**
 * What runs on a chatmail host, computed from the config: the systemd services the stack installs
 * and keeps running, and the ports each one listens on (the fixed ones and the configured ones).
 * The deploy claims these ports in its preflight; the doctor's host checks expect these units
 * active and these ports held by them. Paths: paths.ts.
 */
import type { Config } from '../config/schema.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { DKIM, dkimEnabled } from './federation.js'
import {
  ACCOUNTS,
  BACKUP,
  DISK_PATHS,
  DOVECOT_USERS,
  LETSENCRYPT_DIR,
  PATHS,
  POSTFIX_QUEUE_DIR,
  POSTFIX_QUEUES,
} from './paths.js'

/** What the description reads from the config: the domain and the configured ports. */
export type ServerConfig = Pick<Config, 'domain' | 'imap' | 'iroh'> & { turn: Pick<Config['turn'], 'port' | 'tlsPort'> }

export interface ServerPort {
  /** The systemd service that listens (without `.service`). */
  unit: string
  proto: 'tcp' | 'udp'
  port: number
  /** The names of the processes that hold it (/proc/PID/comm). */
  programs: readonly string[]
}

export interface ServerDescription {
  /** The systemd services the stack installs and keeps running (without `.service`), in report order. */
  units: readonly string[]
  /** Every port a service listens on, by service in the order of `units`. */
  ports: readonly ServerPort[]
  /** The paths whose file systems must not fill up: the system, mail, logs. */
  diskPaths: readonly string[]
  /**
   * Server data: what a backup holds and a restore puts back (the rest comes from chatmail.toml and
   * a deploy). Paths a host does not have (no DKIM key on an IP-only server, no certbot without
   * ACME) are skipped where they are absent.
   */
  dataPaths: readonly string[]
  /** The services that write server data, stopped for a backup's consistent pass (postfix first: it stops accepting). */
  dataWriters: readonly string[]
}

/** Server data, by what it is (see `ServerDescription.dataPaths`). */
export const DATA_PATHS = [
  ACCOUNTS.dataDir, // accounts, invites, last logins, the expiry's state
  DOVECOT_USERS, // accounts kept in dovecot's passdb file
  PATHS.mailRoot, // every mailbox, with dovecot's UID lists and indexes
  ...POSTFIX_QUEUES.map((q) => `${POSTFIX_QUEUE_DIR}/${q}`), // accepted, not yet delivered
  DKIM.keyDir, // the DKIM key other servers know us by
  PATHS.tlsDir, // the TLS key and certificate we made (self-signed) or copied
  LETSENCRYPT_DIR, // certbot's ACME account, keys and certificates
  BACKUP.ownersFile, // user and group names of the ids above, for a restore on another host
] as const

/** The description of a server whose config is not at hand (`doctor --ssh` for another domain): the default ports. */
export function defaultServerConfig(domain: string): ServerConfig {
  return {
    domain,
    imap: { port: DEFAULT_PORTS.imap },
    iroh: { relayUrl: '', port: DEFAULT_PORTS.irohRelay },
    turn: { port: DEFAULT_PORTS.turn, tlsPort: DEFAULT_PORTS.turnTls },
  }
}

export function describeServer(c: ServerConfig): ServerDescription {
  const listen = (unit: string, programs: string[], ...at: [ServerPort['proto'], number][]): ServerPort[] =>
    at.map(([proto, port]) => ({ unit, proto, port, programs }))
  const ports = [
    ...listen('dovecot', ['dovecot', 'imap-login'], ['tcp', DEFAULT_PORTS.imapStarttls], ['tcp', c.imap.port]),
    ...listen('postfix', ['master', 'smtpd'], ['tcp', 25], ['tcp', 465], ['tcp', 587]),
    ...listen('coturn', ['turnserver'], ['tcp', c.turn.port], ['udp', c.turn.port], ['tcp', c.turn.tlsPort]),
    ...listen('nginx', ['nginx'], ['tcp', DEFAULT_PORTS.http], ['tcp', DEFAULT_PORTS.https]),
    ...listen('iroh-relay', ['iroh-relay', 'node'], ['tcp', c.iroh.port]),
  ]
  const units = [
    'dovecot',
    'postfix',
    'coturn',
    'nginx',
    'iroh-relay',
    'chatmail-metadata',
    'chatmail-accounts',
    'chatmail-filter',
    // opendkim signs for a domain: an IP-only server has none (federation.ts).
    ...(dkimEnabled(c) ? ['opendkim'] : []),
  ]
  const seen = new Set<string>()
  return {
    units,
    ports: ports.filter((p) => !seen.has(`${p.proto}/${p.port}`) && seen.add(`${p.proto}/${p.port}`)),
    diskPaths: DISK_PATHS,
    dataPaths: DATA_PATHS,
    dataWriters: ['postfix', 'dovecot', 'chatmail-accounts'],
  }
}

/** The ports one service listens on. */
export const portsOf = (d: ServerDescription, unit: string): ServerPort[] => d.ports.filter((p) => p.unit === unit)
