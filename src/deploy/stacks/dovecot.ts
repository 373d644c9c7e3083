/**
 * Profile `dovecot`: postfix + dovecot (IMAP METADATA through chatmail-metadata), coturn with
 * TLS, iroh-relay v0.35 behind nginx, TLS certificates, systemd units.
 */
import type { StackDefinition } from '../service.js'
import { chatmailAccounts } from '../services/chatmail-accounts.js'
import { chatmailFilter } from '../services/chatmail-filter.js'
import { chatmailMetadata } from '../services/chatmail-metadata.js'
import { coturn } from '../services/coturn.js'
import { dovecot } from '../services/dovecot.js'
import { irohRelay } from '../services/iroh-relay.js'
import { nginx } from '../services/nginx.js'
import { opendkim } from '../services/opendkim.js'
import { postfix } from '../services/postfix.js'
import { system } from '../services/system.js'
import { tls } from '../services/tls.js'

export const dovecotStack: StackDefinition = {
  profile: 'dovecot',
  services: [
    system,
    tls,
    chatmailMetadata,
    chatmailAccounts,
    chatmailFilter,
    dovecot,
    opendkim,
    postfix,
    coturn,
    irohRelay,
    nginx,
  ],
}
