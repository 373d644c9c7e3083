/**
 * What other mail servers need from ours, and what `chatmail dns` publishes for it: the DKIM key
 * (made on the host once, see services/opendkim.ts), the MTA-STS policy and its id, and the names
 * the TLS certificate must cover. Pure: no I/O.
 *
 * DKIM: the selector and key path are those of cmdeploy (selector `opendkim`,
 * /etc/dkimkeys/opendkim.private), so a server taken over from cmdeploy keeps its key and its
 * published record. The private key never leaves the host; `chatmail dns` reads the public part
 * with `DKIM.publicKeyCommand` (as root, over SSH) and publishes `dkimRecord(thatOutput)` at
 * `dkimRecordName(domain)`.
 */
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import type { Config } from '../config/schema.js'

export const DKIM = {
  selector: 'opendkim',
  keyDir: '/etc/dkimkeys',
  privateKey: '/etc/dkimkeys/opendkim.private',
  /** opendkim's milter socket, inside postfix's chroot (/var/spool/postfix). */
  socketDir: '/var/spool/postfix/opendkim',
  socket: '/var/spool/postfix/opendkim/opendkim.sock',
  /** The same socket as postfix names it (relative to its chroot). */
  postfixSocket: 'unix:opendkim/opendkim.sock',
  /** RSA key size of a new key (2048: what DNS TXT records and every verifier handle). */
  bits: 2048,
  /**
   * Prints the public key as one base64 line (DER SubjectPublicKeyInfo, the `p=` of the record).
   * Run as root on the host; reads only the public part out of the private key file.
   */
  publicKeyCommand: 'openssl pkey -in /etc/dkimkeys/opendkim.private -pubout -outform DER | base64 -w0',
} as const

/** DKIM needs a domain name: an IP-only server has no DNS to publish a key in. */
export function dkimEnabled(c: Pick<Config, 'domain'>): boolean {
  return isIP(c.domain) === 0
}

export function dkimRecordName(domain: string): string {
  return `${DKIM.selector}._domainkey.${domain}`
}

/** The TXT value for the public key that `DKIM.publicKeyCommand` printed. */
export function dkimRecord(publicKeyBase64: string): string {
  const p = publicKeyBase64.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(p)) throw new Error('the DKIM public key is not base64')
  return `v=DKIM1; k=rsa; p=${p}`
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

/** The TXT record at `_mta-sts.DOMAIN` announcing the policy. */
export function mtaStsRecord(domain: string): { name: string; value: string } {
  return { name: `_mta-sts.${domain}`, value: `v=STSv1; id=${mtaStsId(mtaStsPolicy(domain))}` }
}

export const mtaStsHost = (domain: string): string => `mta-sts.${domain}`
export const wwwHost = (domain: string): string => `www.${domain}`

/**
 * The names the server's certificate must cover: the domain, and with MTA-STS also mta-sts.DOMAIN
 * and www.DOMAIN (the zone points both at the server, as chatmail relays' zones do).
 */
export function certificateNames(c: Pick<Config, 'domain' | 'tls'>): string[] {
  return mtaStsEnabled(c) ? [c.domain, mtaStsHost(c.domain), wwwHost(c.domain)] : [c.domain]
}
