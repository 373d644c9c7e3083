/** Every check, in the fixed order results are printed. */
import { credentialChecks } from './checks/credentials.js'
import { imapChecks } from './checks/imap.js'
import { metadataChecks } from './checks/metadata.js'
import { relayChecks } from './checks/relay.js'
import { tlsChecks } from './checks/tls.js'
import { turnChecks } from './checks/turn.js'
import type { CheckDef } from './model.js'

export async function loadChecks(): Promise<CheckDef[]> {
  return [...imapChecks, ...metadataChecks, ...credentialChecks, ...turnChecks, ...relayChecks, ...tlsChecks]
}
