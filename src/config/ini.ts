/**
 * Import of cmdeploy's chatmail.ini ([params] section; chatmail/relay chatmaild/config.py).
 * Only keys with a meaning in our stack are taken; the rest are reported by name.
 */
import { ChatmailError, ExitCode } from '../lib/errors.js'

export interface IniImport {
  domain?: string
  tlsMode?: 'acme' | 'self-signed' | 'manual'
  cert?: string
  key?: string
  acmeEmail?: string
  relayUrl?: string
  maxMessageSize?: number
  maxMailboxSize?: string
  maxUserSendPerMinute?: number
  maxUserSendBurst?: number
  /** Seconds (chatmail.ini counts days). */
  deleteMailsAfterSeconds?: number
  deleteLargeAfterSeconds?: number
  deleteInactiveAfterSeconds?: number
  imported: string[]
  ignored: string[]
}

/** chatmail.ini's ages: whole days, 1 to 365. */
function iniDays(file: string, key: string, value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < 1 || n > 365) {
    throw new ChatmailError(`${file}: ${key} must be a number of days from 1 to 365`, ExitCode.cannotRun)
  }
  return n * 86400
}

/** Minimal INI reader for cmdeploy's format: `[section]`, `key = value`, `#`/`;` comments. */
export function parseIni(text: string, file: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {}
  let section: Record<string, string> | undefined
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const sec = /^\[([^\]]+)\]$/.exec(line)
    if (sec) {
      section = out[sec[1]!.trim()] ??= {}
      continue
    }
    const eq = line.indexOf('=')
    if (eq < 0 || !section) {
      throw new ChatmailError(`${file} line ${i + 1}: expected "key = value" inside a [section]`, ExitCode.cannotRun)
    }
    section[line.slice(0, eq).trim()] = line.slice(eq + 1).trim()
  }
  return out
}

export function importIni(text: string, file: string): IniImport {
  const ini = parseIni(text, file)
  const params = ini.params
  if (!params)
    throw new ChatmailError(`${file} has no [params] section; is it a cmdeploy chatmail.ini?`, ExitCode.cannotRun)
  const result: IniImport = { imported: [], ignored: [] }
  for (const [key, value] of Object.entries(params)) {
    switch (key) {
      case 'mail_domain':
        result.domain = value
        break
      case 'acme_email':
        if (value) result.acmeEmail = value
        break
      case 'tls_external_cert_and_key': {
        if (!value) break
        const [cert, k, ...rest] = value.split(/\s+/)
        if (!cert || !k || rest.length) {
          throw new ChatmailError(`${file}: tls_external_cert_and_key must be "CERT_PATH KEY_PATH"`, ExitCode.cannotRun)
        }
        result.tlsMode = 'manual'
        result.cert = cert
        result.key = k
        break
      }
      case 'iroh_relay':
        result.relayUrl = value
        break
      case 'max_message_size':
        if (!/^\d+$/.test(value))
          throw new ChatmailError(`${file}: max_message_size must be a number of bytes`, ExitCode.cannotRun)
        result.maxMessageSize = Number(value)
        break
      case 'max_mailbox_size':
        result.maxMailboxSize = value
        break
      case 'max_user_send_per_minute':
      case 'max_user_send_burst_size': {
        const n = Number(value)
        if (!/^\d+$/.test(value) || n < 1 || n > 1_000_000)
          throw new ChatmailError(`${file}: ${key} must be a whole number from 1 to 1000000`, ExitCode.cannotRun)
        if (key === 'max_user_send_per_minute') result.maxUserSendPerMinute = n
        else result.maxUserSendBurst = n
        break
      }
      case 'delete_mails_after':
        result.deleteMailsAfterSeconds = iniDays(file, key, value)
        break
      case 'delete_large_after':
        result.deleteLargeAfterSeconds = iniDays(file, key, value)
        break
      case 'delete_inactive_users_after':
        result.deleteInactiveAfterSeconds = iniDays(file, key, value)
        break
      default:
        result.ignored.push(key)
        continue
    }
    result.imported.push(key)
  }
  return result
}
