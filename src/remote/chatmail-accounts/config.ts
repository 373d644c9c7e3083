/**
 * chatmail-accounts' config file (templates/chatmail-accounts.conf documents every key). Pure.
 */

import { checkDomain } from '../../config/domain.js'
import { formatDuration, parseDuration } from '../../protocols/duration.js'
import { parseCount, parseFlag, parsePath, parseSize, readKeyValues } from '../lib/kv-config.js'
import type { Policy, Registration } from './accounts.js'

export interface SocketSpec {
  path: string
  mode: number
  /** Group name to give the socket (the service must be a member), or undefined. */
  group: string | undefined
}

export interface ServiceConfig extends Policy {
  dictSocket: SocketSpec
  socketmapSocket: SocketSpec
  httpSocket: SocketSpec
  controlSocket: SocketSpec
  /** dovecot's last_login plugin (the mail processes, as vmail). */
  lastloginSocket: SocketSpec | undefined
  expiry: Expiry
  dataDir: string
  /** The passwd-files dovecot asks before this service: their addresses are never created here (owners.ts). */
  passwdFiles: string[]
  diskPath: string
  rateMax: number
  rateWindowSeconds: number
  maxConnections: number
  verbose: boolean
}

/** What the daily expiry (`chatmail-accounts expire CONFIG`) deletes. Ages in seconds. */
export interface Expiry {
  deleteMailsAfter: number
  deleteLargeAfter: number
  largeMessageSize: number
  deleteInactiveAfter: number
  /** Addresses whose mailboxes the expiry never touches (the doctor's). */
  exempt: string[]
  /** dovecot's passwd-file of an operator's accounts; unset: no sweep of orphan mailboxes. */
  usersFile: string | undefined
}

export type ConfigResult = { ok: true; config: ServiceConfig } | { ok: false; errors: string[] }

const KNOWN_KEYS = [
  'domain',
  'data_dir',
  'mail_root',
  'dict_socket',
  'dict_socket_group',
  'socketmap_socket',
  'socketmap_socket_group',
  'http_socket',
  'http_socket_group',
  'control_socket',
  'lastlogin_socket',
  'lastlogin_socket_group',
  'delete_mails_after',
  'delete_large_after',
  'large_message_size',
  'delete_inactive_after',
  'expire_exempt',
  'users_file',
  'passwd_files',
  'registration',
  'username_min_length',
  'username_max_length',
  'password_min_length',
  'min_free_disk',
  'min_available_memory',
  'disk_path',
  'max_creations_per_client',
  'creation_window',
  'pbkdf2_rounds',
  'self_signed',
  'max_connections',
  'verbose',
] as const
type Key = (typeof KNOWN_KEYS)[number]

const REGISTRATIONS: Registration[] = ['open', 'closed', 'invite']

function path(v: Map<Key, string>, key: Key, errors: string[]): string {
  return parsePath(key, v.get(key), errors)
}

function group(v: Map<Key, string>, key: Key, errors: string[]): string | undefined {
  const text = v.get(key)
  if (text === undefined || text === '') return undefined
  if (!/^[a-z_][a-z0-9_-]*$/.test(text)) errors.push(`${key} "${text}" is not a group name`)
  return text
}

/** An expiry age: at least a day (a bare number would be seconds here, days in chatmail.ini). */
function age(v: Map<Key, string>, key: Key, fallback: string, errors: string[]): number {
  const text = v.get(key) ?? fallback
  const d = parseDuration(text)
  if (!d.ok || d.seconds < 86400) {
    errors.push(`${key} "${text}" is not a duration of at least 1d`)
    return 365 * 86400
  }
  return d.seconds
}

export function parseConfig(text: string): ConfigResult {
  const errors: string[] = []
  const v = readKeyValues(text, KNOWN_KEYS, errors)
  const domain = (v.get('domain') ?? '').toLowerCase()
  // What `chatmail init` accepts, a `_` first label (a self-signed server, as on chatmail relays) too.
  const checked = checkDomain(domain)
  if (!checked.ok || checked.domain !== domain) errors.push(`domain "${domain}" is not a domain name or IPv4 address`)
  const registration = (v.get('registration') ?? 'open') as Registration
  if (!REGISTRATIONS.includes(registration)) {
    errors.push(`registration "${registration}" is not one of ${REGISTRATIONS.join(', ')}`)
  }
  const min = parseCount('username_min_length', v.get('username_min_length'), 9, errors, 1, 64)
  const max = parseCount('username_max_length', v.get('username_max_length'), 9, errors, 1, 64)
  if (min > max) errors.push(`username_min_length ${min} is above username_max_length ${max}`)
  const window = parseDuration(v.get('creation_window') ?? '1h')
  if (!window.ok) errors.push(`creation_window "${v.get('creation_window')}" ${window.reason}`)
  const dataDir = path(v, 'data_dir', errors)
  const sock = (key: Key, groupKey: Key | undefined, mode: number): SocketSpec => ({
    path: path(v, key, errors),
    mode,
    group: groupKey ? group(v, groupKey, errors) : undefined,
  })
  const config: ServiceConfig = {
    rules: {
      domain,
      localMinLength: min,
      localMaxLength: max,
      passwordMinLength: parseCount('password_min_length', v.get('password_min_length'), 9, errors, 1, 1024),
    },
    registration,
    minFreeDisk: parseSize('min_free_disk', v.get('min_free_disk'), 1024 ** 3, errors),
    minAvailableMemory: parseSize('min_available_memory', v.get('min_available_memory'), 200 * 1024 ** 2, errors),
    pbkdf2Rounds: parseCount('pbkdf2_rounds', v.get('pbkdf2_rounds'), 10_000, errors, 1000, 10_000_000),
    mailRoot: path(v, 'mail_root', errors),
    selfSigned: parseFlag('self_signed', v.get('self_signed'), errors),
    dictSocket: sock('dict_socket', 'dict_socket_group', 0o660),
    socketmapSocket: sock('socketmap_socket', 'socketmap_socket_group', 0o660),
    httpSocket: sock('http_socket', 'http_socket_group', 0o660),
    controlSocket: sock('control_socket', undefined, 0o600),
    lastloginSocket: v.get('lastlogin_socket') ? sock('lastlogin_socket', 'lastlogin_socket_group', 0o660) : undefined,
    expiry: {
      deleteMailsAfter: age(v, 'delete_mails_after', '20d', errors),
      deleteLargeAfter: age(v, 'delete_large_after', '7d', errors),
      largeMessageSize: parseSize('large_message_size', v.get('large_message_size'), 200_000, errors),
      deleteInactiveAfter: age(v, 'delete_inactive_after', '90d', errors),
      exempt: (v.get('expire_exempt') ?? '')
        .split(/\s+/)
        .filter((a) => a !== '')
        .map((a) => a.toLowerCase()),
      usersFile: v.get('users_file') ? path(v, 'users_file', errors) : undefined,
    },
    dataDir,
    passwdFiles: (v.get('passwd_files') ?? '')
      .split(/\s+/)
      .filter((p) => p !== '')
      .map((p) => parsePath('passwd_files', p, errors)),
    diskPath: v.get('disk_path') ? path(v, 'disk_path', errors) : dataDir,
    rateMax: parseCount('max_creations_per_client', v.get('max_creations_per_client'), 20, errors),
    rateWindowSeconds: window.ok ? window.seconds : 3600,
    maxConnections: parseCount('max_connections', v.get('max_connections'), 1024, errors, 16, 65536),
    verbose: parseFlag('verbose', v.get('verbose'), errors),
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config }
}

/** One line for the log; no secrets in the config. */
export function describeConfig(c: ServiceConfig): string {
  return `domain=${c.rules.domain} registration=${c.registration} local=${c.rules.localMinLength}-${c.rules.localMaxLength} password>=${c.rules.passwordMinLength} rate=${c.rateMax}/${formatDuration(c.rateWindowSeconds)} min_disk=${Math.round(c.minFreeDisk / 1024 ** 2)}M min_mem=${Math.round(c.minAvailableMemory / 1024 ** 2)}M data=${c.dataDir} expire: mails>${formatDuration(c.expiry.deleteMailsAfter)} large>${formatDuration(c.expiry.deleteLargeAfter)} inactive>${formatDuration(c.expiry.deleteInactiveAfter)}`
}
