/**
 * chatmail.toml: the one file an operator keeps per server. Validated on every load; an error
 * names the file, the key and what is allowed.
 */
import * as v from 'valibot'
import { formatDuration, parseDuration } from '../protocols/duration.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { type AccountsConfig, AccountsSection, resolveAccounts } from './accounts.js'
import { checkDomain } from './domain.js'
import { duration, text } from './fields.js'
import { type MailConfig, MailSection, resolveMail } from './mail.js'
import { port, portClash } from './ports.js'
import { addressOn, emailAddress, externalIp, hostName, hostPath, serverAddress, urlOf } from './values.js'

/** The stacks `chatmail deploy host` can install. (The doctor checks any chatmail server, Madmail too, without one.) */
export const PROFILES = ['dovecot'] as const
export const TLS_MODES = ['acme', 'self-signed', 'manual'] as const
export const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory'

const domain = v.pipe(
  text('domain'),
  v.check((s) => checkDomain(s).ok, 'domain must be a fully qualified domain name or an IPv4 address'),
)

/** The longest turn.ttl without turn.allow_long_ttl: chatmail-turn hands out 5-day credentials. */
export const MAX_TURN_TTL_SECONDS = 5 * 86400

export const ConfigSchema = v.strictObject(
  {
    domain,
    profile: v.optional(
      v.picklist(PROFILES, (issue) =>
        issue.input === 'madmail'
          ? 'profile "madmail" cannot be deployed by chatmail, which installs the dovecot stack only: set profile = "dovecot" or remove the key (chatmail doctor checks a Madmail server without it)'
          : `profile must be one of: ${PROFILES.join(', ')}`,
      ),
      'dovecot',
    ),
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
    mail: MailSection,
    accounts: AccountsSection,
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
    backup: v.optional(
      v.strictObject(
        {
          password: v.optional(
            v.pipe(
              v.string('backup.password must be a string'),
              v.regex(
                /^[A-Za-z0-9_-]{32,}$/,
                'backup.password must be 32 or more of A-Z a-z 0-9 _ - (chatmail backup makes one)',
              ),
            ),
          ),
        },
        'allowed keys in [backup]: password',
      ),
      {},
    ),
  },
  'allowed top-level keys: domain, profile, and the sections [tls] [turn] [iroh] [imap] [mail] [accounts] [deploy] [doctor] [backup]',
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
  mail: MailConfig
  accounts: AccountsConfig
  deploy: { destination?: string; irohRelaySource?: string; irohRelaySha256?: string }
  doctor: { user?: string; password?: string }
  /** [backup]: restic's repository password (made by `chatmail backup` when absent). */
  backup: { password?: string }
}

export function defaultRelayUrl(domain: string, tlsMode: string, irohPort: number = DEFAULT_PORTS.irohRelay): string {
  // A self-signed certificate cannot be verified by iroh clients (they trust only webpki roots),
  // so such servers advertise the relay's plain-HTTP port instead.
  return tlsMode === 'self-signed' ? `http://${domain}:${irohPort}` : `https://${domain}`
}

export { DEFAULT_ACCOUNTS, REGISTRATIONS } from './accounts.js'
export { DEFAULT_MAX_SMTP_RECIPIENTS } from './mail.js'
export { DEFAULT_EXPIRY, LARGE_MESSAGE_BYTES, sizeBytes } from './storage.js'

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
  const mail = resolveMail(raw.mail)
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
    mail,
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
    backup: raw.backup.password ? { password: raw.backup.password } : {},
  }
}
