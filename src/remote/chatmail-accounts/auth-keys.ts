/**
 * The dict keys dovecot's dict passdb and userdb look up (templates/dovecot: `password_key` and
 * `user_key`), as this service reads them. Dovecot's `%E` modifier puts a backslash before `"`, `'`
 * and `\`, so a `"` that is not escaped separates the fields. Pure.
 *
 *   shared/passdb/<client IP>"<user>"<password>"<service>
 *   shared/userdb/<user>
 *
 * The service (dovecot's %s: imap, smtp for postfix's SASL, ...) decides how a refusal is answered
 * (see Accounts.passdb). A passdb key of three fields (a config from before the service was in it)
 * reads as service "".
 */

export type AuthKey =
  | { kind: 'passdb'; client: string; user: string; password: string; service: string }
  | { kind: 'userdb'; user: string }
  | { kind: 'other' }

/** Splits on unescaped `"`, removing the backslash escapes. */
export function splitEscaped(text: string): string[] {
  const parts: string[] = []
  let cur = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (c === '\\' && i + 1 < text.length) cur += text[++i]
    else if (c === '"') {
      parts.push(cur)
      cur = ''
    } else cur += c
  }
  parts.push(cur)
  return parts
}

export function parseAuthKey(key: string): AuthKey {
  if (key.startsWith('shared/passdb/')) {
    const parts = splitEscaped(key.slice('shared/passdb/'.length))
    if (parts.length !== 3 && parts.length !== 4) return { kind: 'other' }
    const [client, user, password, service = ''] = parts as [string, string, string, string?]
    return { kind: 'passdb', client, user, password, service }
  }
  if (key.startsWith('shared/userdb/')) {
    const parts = splitEscaped(key.slice('shared/userdb/'.length))
    return parts.length === 1 ? { kind: 'userdb', user: parts[0] as string } : { kind: 'other' }
  }
  return { kind: 'other' }
}
