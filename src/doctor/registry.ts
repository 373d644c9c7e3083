/** Every check, in the fixed order results are printed. */
import { credentialChecks } from './checks/credentials.js'
import { hostChecks } from './checks/host.js'
import { imapChecks } from './checks/imap.js'
import { metadataChecks } from './checks/metadata.js'
import { relayChecks } from './checks/relay.js'
import { tlsChecks } from './checks/tls.js'
import { turnChecks } from './checks/turn.js'
import type { CheckDef } from './model.js'

/** The host group only when the run can reach the host over SSH (--ssh, or deploy host's connection). */
export async function loadChecks(o: { host?: unknown } = {}): Promise<CheckDef[]> {
  const outside = [...imapChecks, ...metadataChecks, ...credentialChecks, ...turnChecks, ...relayChecks, ...tlsChecks]
  return o.host ? [...outside, ...hostChecks] : outside
}
