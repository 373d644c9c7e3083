/** Every check, in the fixed order results are printed. */
import { isIP } from 'node:net'
import { specialUseName } from '../dns/special-use.js'
import { credentialChecks } from './checks/credentials.js'
import { dnsChecks } from './checks/dns.js'
import { hostChecks } from './checks/host.js'
import { imapChecks } from './checks/imap.js'
import { mailChecks, xchatmailChecks } from './checks/mail.js'
import { metadataChecks } from './checks/metadata.js'
import { relayChecks } from './checks/relay.js'
import { tlsChecks } from './checks/tls.js'
import { turnChecks } from './checks/turn.js'
import { turnRelayChecks } from './checks/turn-relay.js'
import type { CheckDef } from './model.js'

/**
 * The host group only when the run can reach the host over SSH (--ssh, or deploy host's connection);
 * the dns group only for a domain name the world can ask about (not an IP-only server, not a
 * special-use name such as .test or localhost), or when --nameserver names a server to ask.
 */
export async function loadChecks(
  o: { host?: unknown; domain?: string; nameserver?: unknown } = {},
): Promise<CheckDef[]> {
  const dns = o.domain !== undefined && !isIP(o.domain) && (Boolean(o.nameserver) || !specialUseName(o.domain))
  const outside = [
    ...imapChecks,
    ...xchatmailChecks,
    ...metadataChecks,
    ...credentialChecks,
    ...turnChecks,
    ...turnRelayChecks,
    ...relayChecks,
    ...tlsChecks,
    ...(dns ? dnsChecks : []),
    ...mailChecks,
  ]
  return o.host ? [...outside, ...hostChecks] : outside
}
