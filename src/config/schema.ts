/**
 * chatmail.toml: the one file an operator keeps per server. Validated on every load; an error
 * names the file, the key and what is allowed.
 */
import * as v from 'valibot'
import { formatDuration, parseDuration } from '../protocols/duration.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { checkDomain } from './domain.js'
import { port, portClash } from './ports.js'
import { checkMailSizes, days, daysSeconds } from './storage.js'
import {
  addressOn,
  checkValue,
  emailAddress,
  externalIp,
  hostName,
  hostPath,
  serverAddress,
  urlOf,
  type ValueCheck,
} from './values.js'

export const PROFILES = ['dovecot', 'madmail'] as const
export const TLS_MODES = ['acme', 'self-signed', 'manual'] as const
export const REGISTRATIONS = ['open', 'invite', 'closed'] as const
export const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory'

const duration = (what: string) =>
  v.pipe(
    v.union([v.string(), v.number()], `${what} must be a duration such as "24h"`),
    v.check((s) => checkValue(String(s)) === undefined, `${what} must not contain control characters`),
    v.check(
      (s) => parseDuration(String(s)).ok,
      `${what} must be a duration from 1s to 365d (seconds, or 90s, 30m, 12h, 5d)`,
    ),
  )

const count = (what: string, min: number, max: number) =>
  v.pipe(
    v.number(`${what} must be a whole number`),
    v.integer(`${what} must be a whole number`),
    v.minValue(min, `${what} must be from ${min} to ${max}`),
    v.maxValue(max, `${what} must be from ${min} to ${max}`),
  )

const size = (what: string) =>
  v.pipe(
    v.string(`${what} must be a size such as "1G"`),
    v.regex(/^\d+[KMGT]?$/i, `${what} must be a size such as "1G"`),
  )

/** A string that passes `checks` (and never holds a control character); "" too when `orEmpty`. */
const text = (what: string, checks: ValueCheck[] = [], orEmpty = false) =>
  v.pipe(
    v.string(`${what} must be a string`),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed || (orEmpty && dataset.value === '')) return
      const why = checkValue(dataset.value, ...checks)
      if (why) addIssue({ message: `${what} ${why}${orEmpty ? ', or "" for none' : ''}` })
    }),
  )

const domain = v.pipe(
  text('domain'),
  v.check((s) => checkDomain(s).ok, 'domain must be a fully qualified domain name or an IPv4 address'),
)

/** The longest turn.ttl without turn.allow_long_ttl: chatmail-turn hands out 5-day credentials. */
export const MAX_TURN_TTL_SECONDS = 5 * 86400

export const ConfigSchema = v.strictObject(
  {
    domain,
    profile: v.optional(v.picklist(PROFILES, `profile must be one of: ${PROFILES.join(', ')}`), 'dovecot'),
    tls: v.optional(
      v.strictObject(
        {
          mode: v.optional(v.picklist(TLS_MODES, `tls.mode must be one of: ${TLS_MODES.join(', ')}`), 'acme'),
          acme_email: v.optional(text('tls.acme_email', [emailAddress], true), ''),
          acme_directory: v.optional(text('tls.acme_directory', [urlOf(['https'])]), LETSENCRYPT_DIRECTORY),
          cert: v.optional(text('tls.cert', [hostPath])),
          key: v.optional(text('tls.key', [hostPath])),
        },
        'allowed keys in [tls]: mode, acme_email, acme_directory, cert, key',
      ),
      {},
    ),
    turn: v.strictObject(
      {
        secret: v.pipe(
          v.string('turn.secret must be a string'),
          v.minLength(16, 'turn.secret must be at least 16 characters (chatmail init makes 43)'),
          v.check((s) => s !== 'north', 'turn.secret must not be "north", the public secret of chatmail-turn'),
          v.regex(/^[\x21-\x7e]+$/, 'turn.secret must be printable ASCII without spaces'),
        ),
        host: v.optional(text('turn.host', [hostName])),
        port: v.optional(port('turn.port'), DEFAULT_PORTS.turn),
        tls_port: v.optional(port('turn.tls_port'), DEFAULT_PORTS.turnTls),
        ttl: v.optional(duration('turn.ttl'), '24h'),
        allow_long_ttl: v.optional(v.boolean('turn.allow_long_ttl must be true or false'), false),
        external_ip: v.optional(text('turn.external_ip', [externalIp])),
      },
      'allowed keys in [turn]: secret, host, port, tls_port, ttl, allow_long_ttl, external_ip',
    ),
    iroh: v.optional(
      v.strictObject(
        {
          relay_url: v.optional(text('iroh.relay_url', [urlOf(['http', 'https'])], true)),
          port: v.optional(port('iroh.port'), DEFAULT_PORTS.irohRelay),
        },
        'allowed keys in [iroh]: relay_url, port',
      ),
      {},
    ),
    imap: v.optional(
      v.strictObject({ port: v.optional(port('imap.port'), DEFAULT_PORTS.imap) }, 'allowed keys in [imap]: port'),
      {},
    ),
    mail: v.optional(
      v.strictObject(
        {
          max_message_size: v.optional(
            v.pipe(v.number('mail.max_message_size must be a number of bytes'), v.integer(), v.minValue(1024)),
            31457280,
          ),
          max_mailbox_size: v.optional(size('mail.max_mailbox_size'), '500M'),
          admin: v.optional(text('mail.admin', [emailAddress])),
          comment: v.optional(
            v.pipe(text('mail.comment'), v.maxLength(200, 'mail.comment must be at most 200 characters')),
            '',
          ),
          max_smtp_recipients: v.optional(count('mail.max_smtp_recipients', 1, 100_000), 1000),
          delete_mails_after: v.optional(days('mail.delete_mails_after'), '20d'),
          delete_large_after: v.optional(days('mail.delete_large_after'), '7d'),
          max_user_send_per_minute: v.optional(count('mail.max_user_send_per_minute', 1, 1_000_000), 60),
          max_user_send_burst: v.optional(count('mail.max_user_send_burst', 1, 1_000_000), 10),
        },
        'allowed keys in [mail]: max_message_size, max_mailbox_size, admin, comment, max_smtp_recipients, delete_mails_after, delete_large_after, max_user_send_per_minute, max_user_send_burst',
      ),
      {},
    ),
    accounts: v.optional(
      v.strictObject(
        {
          registration: v.optional(
            v.picklist(REGISTRATIONS, `accounts.registration must be one of: ${REGISTRATIONS.join(', ')}`),
            'open',
          ),
          username_min_length: v.optional(count('accounts.username_min_length', 1, 64), 9),
          username_max_length: v.optional(count('accounts.username_max_length', 1, 64), 9),
          password_min_length: v.optional(count('accounts.password_min_length', 1, 1024), 9),
          min_free_disk: v.optional(size('accounts.min_free_disk'), '1G'),
          min_available_memory: v.optional(size('accounts.min_available_memory'), '200M'),
          max_creations_per_client: v.optional(count('accounts.max_creations_per_client', 0, 1_000_000), 20),
          creation_window: v.optional(duration('accounts.creation_window'), '1h'),
          delete_inactive_after: v.optional(days('accounts.delete_inactive_after'), '90d'),
        },
        'allowed keys in [accounts]: registration, username_min_length, username_max_length, password_min_length, min_free_disk, min_available_memory, max_creations_per_client, creation_window, delete_inactive_after',
      ),
      {},
    ),
    deploy: v.optional(
      v.strictObject(
        {
          destination: v.optional(text('deploy.destination')),
          iroh_relay_source: v.optional(text('deploy.iroh_relay_source')),
          iroh_relay_sha256: v.optional(
            v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'deploy.iroh_relay_sha256 must be 64 lowercase hex digits')),
          ),
        },
        'allowed keys in [deploy]: destination, iroh_relay_source, iroh_relay_sha256',
      ),
      {},
    ),
    doctor: v.optional(
      v.strictObject(
        {
          user: v.optional(text('doctor.user')),
          password: v.optional(text('doctor.password')),
        },
        'allowed keys in [doctor]: user, password',
      ),
      {},
    ),
  },
  'allowed top-level keys: domain, profile, and the sections [tls] [turn] [iroh] [imap] [mail] [accounts] [deploy] [doctor]',
)

export type RawConfig = v.InferOutput<typeof ConfigSchema>

/** The config with every default resolved: what the rest of the program uses. */
export interface Config {
  domain: string
  profile: (typeof PROFILES)[number]
  tls: { mode: (typeof TLS_MODES)[number]; acmeEmail: string; acmeDirectory: string; cert?: string; key?: string }
  turn: {
    secret: string
    host: string
    port: number
    tlsPort: number
    ttlSeconds: number
    /** turn.allow_long_ttl: the operator accepts a ttl over MAX_TURN_TTL_SECONDS. */
    allowLongTtl?: boolean
    externalIp?: string
  }
  iroh: { relayUrl: string; port: number }
  imap: { port: number }
  mail: {
    maxMessageSize: number
    maxMailboxSize: string
    /** The operator's address, served as /shared/admin (mailto:). */
    admin?: string
    comment: string
    maxSmtpRecipients: number
    /** Messages a logged-in user may send a minute (chatmail-filter's token bucket), and its size. */
    maxUserSendPerMinute: number
    maxUserSendBurst: number
    /** The daily expiry deletes messages older than this, and those over LARGE_MESSAGE_BYTES older than that. */
    deleteMailsAfterSeconds: number
    deleteLargeAfterSeconds: number
  }
  accounts: {
    registration: (typeof REGISTRATIONS)[number]
    usernameMinLength: number
    usernameMaxLength: number
    passwordMinLength: number
    minFreeDisk: string
    minAvailableMemory: string
    maxCreationsPerClient: number
    creationWindowSeconds: number
    /** The expiry timer deletes accounts without a login for this long (seconds). */
    deleteInactiveAfterSeconds: number
  }
  deploy: { destination?: string; irohRelaySource?: string; irohRelaySha256?: string }
  doctor: { user?: string; password?: string }
}

export function defaultRelayUrl(domain: string, tlsMode: string, irohPort: number = DEFAULT_PORTS.irohRelay): string {
  // A self-signed certificate cannot be verified by iroh clients (they trust only webpki roots),
  // so such servers advertise the relay's plain-HTTP port instead.
  return tlsMode === 'self-signed' ? `http://${domain}:${irohPort}` : `https://${domain}`
}

/** [accounts] and [mail] values when the file does not set them (chatmail relays' defaults). */
export const DEFAULT_ACCOUNTS: Config['accounts'] = {
  registration: 'open',
  usernameMinLength: 9,
  usernameMaxLength: 9,
  passwordMinLength: 9,
  minFreeDisk: '1G',
  minAvailableMemory: '200M',
  maxCreationsPerClient: 20,
  creationWindowSeconds: 3600,
  deleteInactiveAfterSeconds: 90 * 86400,
}
export { DEFAULT_EXPIRY, LARGE_MESSAGE_BYTES, sizeBytes } from './storage.js'
export const DEFAULT_MAX_SMTP_RECIPIENTS = 1000

function resolveAccounts(a: RawConfig['accounts']): Config['accounts'] {
  if (a.username_min_length > a.username_max_length) {
    throw new Error(
      `accounts.username_min_length (${a.username_min_length}) must not be above accounts.username_max_length (${a.username_max_length})`,
    )
  }
  const window = parseDuration(String(a.creation_window))
  return {
    registration: a.registration,
    usernameMinLength: a.username_min_length,
    usernameMaxLength: a.username_max_length,
    passwordMinLength: a.password_min_length,
    minFreeDisk: a.min_free_disk,
    minAvailableMemory: a.min_available_memory,
    maxCreationsPerClient: a.max_creations_per_client,
    creationWindowSeconds: window.ok ? window.seconds : 3600,
    deleteInactiveAfterSeconds: daysSeconds(a.delete_inactive_after),
  }
}

export function resolveConfig(raw: RawConfig): Config {
  if (raw.tls.mode === 'manual' && (!raw.tls.cert || !raw.tls.key)) {
    throw new Error('tls.mode "manual" needs tls.cert and tls.key (paths on the host)')
  }
  const domain = checkDomain(raw.domain)
  const name = domain.ok ? domain.domain : raw.domain
  const tls = raw.tls
  const iroh = raw.iroh
  const ttl = parseDuration(String(raw.turn.ttl))
  const ttlSeconds = ttl.ok ? ttl.seconds : 86400
  if (ttlSeconds > MAX_TURN_TTL_SECONDS && !raw.turn.allow_long_ttl) {
    throw new Error(
      `turn.ttl = ${formatDuration(ttlSeconds)} is longer than ${formatDuration(MAX_TURN_TTL_SECONDS)}: ` +
        'a leaked TURN credential would stay valid that long; use a shorter ttl ' +
        '(Delta Chat fetches new ones 12h before they expire), or set turn.allow_long_ttl = true to accept it',
    )
  }
  if (raw.doctor.user !== undefined) {
    const why = addressOn(name)(raw.doctor.user)
    if (why) throw new Error(`doctor.user ${why} (got ${JSON.stringify(raw.doctor.user)})`)
  }
  const clash = portClash([
    { key: 'imap.port', port: raw.imap.port, udp: false },
    { key: 'turn.port', port: raw.turn.port, udp: true },
    { key: 'turn.tls_port', port: raw.turn.tls_port, udp: true },
    { key: 'iroh.port', port: iroh.port, udp: false },
  ])
  if (clash) throw new Error(clash)
  if (iroh.port < 1024) {
    throw new Error(
      `iroh.port = ${iroh.port}: iroh-relay runs as its own user without the capability to bind ports below 1024; use 1024 or higher`,
    )
  }
  checkMailSizes(raw.mail.max_message_size, raw.mail.max_mailbox_size)
  const turnHost = raw.turn.host === undefined ? name : checkDomain(raw.turn.host)
  return {
    domain: name,
    profile: raw.profile,
    tls: {
      mode: tls.mode,
      acmeEmail: tls.acme_email,
      acmeDirectory: tls.acme_directory,
      ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
      ...(tls.key !== undefined ? { key: tls.key } : {}),
    },
    turn: {
      secret: raw.turn.secret,
      host: typeof turnHost === 'string' ? turnHost : turnHost.ok ? turnHost.domain : (raw.turn.host as string),
      port: raw.turn.port,
      tlsPort: raw.turn.tls_port,
      ttlSeconds,
      ...(raw.turn.allow_long_ttl ? { allowLongTtl: true } : {}),
      ...(raw.turn.external_ip ? { externalIp: raw.turn.external_ip } : {}),
    },
    iroh: { relayUrl: iroh.relay_url ?? defaultRelayUrl(name, tls.mode, iroh.port), port: iroh.port },
    imap: { port: raw.imap.port },
    mail: {
      maxMessageSize: raw.mail.max_message_size,
      maxMailboxSize: raw.mail.max_mailbox_size,
      ...(raw.mail.admin ? { admin: raw.mail.admin } : {}),
      comment: raw.mail.comment,
      maxSmtpRecipients: raw.mail.max_smtp_recipients,
      maxUserSendPerMinute: raw.mail.max_user_send_per_minute,
      maxUserSendBurst: raw.mail.max_user_send_burst,
      deleteMailsAfterSeconds: daysSeconds(raw.mail.delete_mails_after),
      deleteLargeAfterSeconds: daysSeconds(raw.mail.delete_large_after),
    },
    accounts: resolveAccounts(raw.accounts),
    deploy: {
      ...(raw.deploy.destination ? { destination: raw.deploy.destination } : {}),
      ...(raw.deploy.iroh_relay_source ? { irohRelaySource: raw.deploy.iroh_relay_source } : {}),
      ...(raw.deploy.iroh_relay_sha256 ? { irohRelaySha256: raw.deploy.iroh_relay_sha256 } : {}),
    },
    doctor: {
      // On an IP-only server the login is the address literal user@[IP], as for every account.
      ...(raw.doctor.user ? { user: serverAddress(raw.doctor.user, name) } : {}),
      ...(raw.doctor.password ? { password: raw.doctor.password } : {}),
    },
  }
}
