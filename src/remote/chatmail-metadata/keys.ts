/**
 * Dovecot stores IMAP server metadata (GETMETADATA "" /shared/X) in `mail_attribute_dict` under
 * `shared/<INBOX GUID>/vendor/vendor.dovecot/pvt/server/X`, and `/private/X` under `priv/…`.
 * We serve only shared server metadata.
 */
const SHARED_SERVER_KEY = /^shared\/[^/]*\/vendor\/vendor\.dovecot\/pvt\/server\/(.+)$/s

/** The IMAP entry name (`/shared/vendor/deltachat/turn`) of a dict key, or undefined for any other key. */
export function imapServerEntry(dictKey: string): string | undefined {
  const m = SHARED_SERVER_KEY.exec(dictKey)
  return m ? `/shared/${m[1]}` : undefined
}
