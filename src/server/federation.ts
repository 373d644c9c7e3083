/**
 * What other mail servers need from ours, and what `chatmail dns` publishes for it: the DKIM key
 * (made on the host once, see services/opendkim.ts), the MTA-STS policy and its id, and the names
 * the TLS certificate must cover. Pure: no I/O.
 *
 * DKIM: the selector and key path are cmdeploy's (selector `opendkim`,
 * /etc/dkimkeys/opendkim.private), so a server taken over from cmdeploy keeps its key and its
 * published record. The private key never leaves the host; `chatmail dns` reads the public part
 * with `dkimPublicKeyCommand()` (src/dns/dkim-key.ts, as root over SSH).
 */
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import type { Config } from '../config/schema.js'

/** The key (selector, path: shared with `chatmail dns`), opendkim's config and its milter socket. */
export const DKIM = {
  /** The record lives at SELECTOR._domainkey.DOMAIN (cmdeploy's selector, so a taken-over server keeps its record). */
  selector: 'opendkim',
  /** The private key on the host (PEM), readable by root and opendkim only. */
  privateKey: '/etc/dkimkeys/opendkim.private',
  keyDir: '/etc/dkimkeys',
  config: '/etc/opendkim.conf',
  /** opendkim's milter socket, inside postfix's chroot (/var/spool/postfix). */
  socketDir: '/var/spool/postfix/opendkim',
  socket: '/var/spool/postfix/opendkim/opendkim.sock',
  /** The same socket as postfix names it (relative to its chroot). */
  postfixSocket: 'unix:opendkim/opendkim.sock',
  /** RSA key size of a new key (2048: what DNS TXT records and every verifier handle). */
  bits: 2048,
} as const

/** DKIM needs a domain name: an IP-only server has no DNS to publish a key in. */
export function dkimEnabled(c: Pick<Config, 'domain'>): boolean {
  return isIP(c.domain) === 0
}

/**
 * MTA-STS (RFC 8461) needs a certificate that other servers verify: ACME, or the operator's own
 * (manual). A self-signed or IP-only server publishes no policy.
 */
export function mtaStsEnabled(c: Pick<Config, 'domain' | 'tls'>): boolean {
  return isIP(c.domain) === 0 && c.tls.mode !== 'self-signed'
}

/** 28 days, in seconds: senders cache the policy this long and refresh it before. */
export const MTA_STS_MAX_AGE = 2419200

/** The policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt: mail for DOMAIN goes to DOMAIN, over TLS. */
export function mtaStsPolicy(domain: string): string {
  return `version: STSv1\nmode: enforce\nmx: ${domain}\nmax_age: ${MTA_STS_MAX_AGE}\n`
}

/** The policy's id: derived from its text, so it changes exactly when the policy does (1-32 alphanumerics). */
export function mtaStsId(policy: string): string {
  return createHash('sha256').update(policy).digest('hex').slice(0, 20)
}

/** The id of the policy this server serves (what `_mta-sts.DOMAIN` must announce). */
export const mtaStsIdFor = (domain: string): string => mtaStsId(mtaStsPolicy(domain))

export const mtaStsHost = (domain: string): string => `mta-sts.${domain}`

/**
 * The names the server's certificate must cover: the domain, and with MTA-STS also mta-sts.DOMAIN
 * (the zone, src/dns/zone.ts, points it at the server).
 */
export function certificateNamesFor(c: Pick<Config, 'domain' | 'tls'>): string[] {
  return mtaStsEnabled(c) ? [c.domain, mtaStsHost(c.domain)] : [c.domain]
}
