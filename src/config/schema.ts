/**
 * chatmail.toml: the one file an operator keeps per server. Validated on every load; an error
 * names the file, the key and what is allowed.
 */
import * as v from 'valibot'
import { parseDuration } from '../protocols/duration.js'
import { checkDomain } from './domain.js'

export const PROFILES = ['dovecot', 'madmail'] as const
export const TLS_MODES = ['acme', 'self-signed', 'manual'] as const
export const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory'

const port = (what: string) =>
  v.pipe(
    v.number(`${what} must be a port number`),
    v.integer(`${what} must be a whole number`),
    v.minValue(1, `${what} must be from 1 to 65535`),
    v.maxValue(65535, `${what} must be from 1 to 65535`),
  )

const domain = v.pipe(
  v.string('domain must be a string'),
  v.check((s) => checkDomain(s).ok, 'domain must be a fully qualified domain name or an IPv4 address'),
)

const duration = (what: string) =>
  v.pipe(
    v.union([v.string(), v.number()], `${what} must be a duration such as "24h"`),
    v.check(
      (s) => parseDuration(String(s)).ok,
      `${what} must be a duration from 1s to 365d (seconds, or 90s, 30m, 12h, 5d)`,
    ),
  )

const url = (what: string) =>
  v.pipe(
    v.string(`${what} must be a string`),
    v.check((s) => s === '' || /^https?:\/\/[^\s/]+/.test(s), `${what} must be an http(s) URL, or "" for none`),
  )

export const ConfigSchema = v.strictObject(
  {
    domain,
    profile: v.optional(v.picklist(PROFILES, `profile must be one of: ${PROFILES.join(', ')}`), 'dovecot'),
    tls: v.optional(
      v.strictObject(
        {
          mode: v.optional(v.picklist(TLS_MODES, `tls.mode must be one of: ${TLS_MODES.join(', ')}`), 'acme'),
          acme_email: v.optional(v.string('tls.acme_email must be a string'), ''),
          acme_directory: v.optional(url('tls.acme_directory'), LETSENCRYPT_DIRECTORY),
          cert: v.optional(v.string('tls.cert must be a path on the host')),
          key: v.optional(v.string('tls.key must be a path on the host')),
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
        host: v.optional(v.string('turn.host must be a host name')),
        port: v.optional(port('turn.port'), 3478),
        tls_port: v.optional(port('turn.tls_port'), 5349),
        ttl: v.optional(duration('turn.ttl'), '24h'),
        external_ip: v.optional(v.string('turn.external_ip must be an IPv4 address')),
      },
      'allowed keys in [turn]: secret, host, port, tls_port, ttl, external_ip',
    ),
    iroh: v.optional(
      v.strictObject(
        {
          relay_url: v.optional(url('iroh.relay_url')),
          port: v.optional(port('iroh.port'), 3340),
        },
        'allowed keys in [iroh]: relay_url, port',
      ),
      {},
    ),
    imap: v.optional(v.strictObject({ port: v.optional(port('imap.port'), 993) }, 'allowed keys in [imap]: port'), {}),
    mail: v.optional(
      v.strictObject(
        {
          max_message_size: v.optional(
            v.pipe(v.number('mail.max_message_size must be a number of bytes'), v.integer(), v.minValue(1024)),
            31457280,
          ),
          max_mailbox_size: v.optional(
            v.pipe(
              v.string('mail.max_mailbox_size must be a size such as "500M"'),
              v.regex(/^\d+[KMG]?$/i, 'mail.max_mailbox_size must be a size such as "500M"'),
            ),
            '500M',
          ),
        },
        'allowed keys in [mail]: max_message_size, max_mailbox_size',
      ),
      {},
    ),
    deploy: v.optional(
      v.strictObject(
        {
          destination: v.optional(v.string('deploy.destination must be user@host[:port]')),
          iroh_relay_source: v.optional(v.string('deploy.iroh_relay_source must be a URL or a local path')),
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
          user: v.optional(v.string('doctor.user must be an address')),
          password: v.optional(v.string('doctor.password must be a string')),
        },
        'allowed keys in [doctor]: user, password',
      ),
      {},
    ),
  },
  'allowed top-level keys: domain, profile, and the sections [tls] [turn] [iroh] [imap] [mail] [deploy] [doctor]',
)

export type RawConfig = v.InferOutput<typeof ConfigSchema>

/** The config with every default resolved: what the rest of the program uses. */
export interface Config {
  domain: string
  profile: (typeof PROFILES)[number]
  tls: { mode: (typeof TLS_MODES)[number]; acmeEmail: string; acmeDirectory: string; cert?: string; key?: string }
  turn: { secret: string; host: string; port: number; tlsPort: number; ttlSeconds: number; externalIp?: string }
  iroh: { relayUrl: string; port: number }
  imap: { port: number }
  mail: { maxMessageSize: number; maxMailboxSize: string }
  deploy: { destination?: string; irohRelaySource?: string; irohRelaySha256?: string }
  doctor: { user?: string; password?: string }
}

export function defaultRelayUrl(domain: string, tlsMode: string, irohPort = 3340): string {
  // A self-signed certificate cannot be verified by iroh clients (they trust only webpki roots),
  // so such servers advertise the relay's plain-HTTP port instead.
  return tlsMode === 'self-signed' ? `http://${domain}:${irohPort}` : `https://${domain}`
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
      host: raw.turn.host ?? name,
      port: raw.turn.port,
      tlsPort: raw.turn.tls_port,
      ttlSeconds: ttl.ok ? ttl.seconds : 86400,
      ...(raw.turn.external_ip ? { externalIp: raw.turn.external_ip } : {}),
    },
    iroh: { relayUrl: iroh.relay_url ?? defaultRelayUrl(name, tls.mode, iroh.port), port: iroh.port },
    imap: { port: raw.imap.port },
    mail: { maxMessageSize: raw.mail.max_message_size, maxMailboxSize: raw.mail.max_mailbox_size },
    deploy: {
      ...(raw.deploy.destination ? { destination: raw.deploy.destination } : {}),
      ...(raw.deploy.iroh_relay_source ? { irohRelaySource: raw.deploy.iroh_relay_source } : {}),
      ...(raw.deploy.iroh_relay_sha256 ? { irohRelaySha256: raw.deploy.iroh_relay_sha256 } : {}),
    },
    doctor: {
      ...(raw.doctor.user ? { user: raw.doctor.user } : {}),
      ...(raw.doctor.password ? { password: raw.doctor.password } : {}),
    },
  }
}
