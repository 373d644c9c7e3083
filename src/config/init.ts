import { usageError } from '../lib/errors.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { checkDomain } from './domain.js'
import { parseConfigText } from './load.js'
import { newTurnSecret, renderConfig, writePrivateFile } from './render.js'
import {
  type Config,
  DEFAULT_ACCOUNTS,
  DEFAULT_EXPIRY,
  DEFAULT_MAX_SMTP_RECIPIENTS,
  defaultRelayUrl,
  LETSENCRYPT_DIRECTORY,
  type PROFILES,
  type TLS_MODES,
} from './schema.js'
import { checkValue, emailAddress, hostPath, urlOf, type ValueCheck } from './values.js'

export interface InitOptions {
  path: string
  force: boolean
  domain: string
  profile: (typeof PROFILES)[number]
  tlsMode?: (typeof TLS_MODES)[number] | undefined
  acmeEmail?: string | undefined
  relayUrl?: string | undefined
  cert?: string | undefined
  key?: string | undefined
  maxMessageSize?: number | undefined
  maxMailboxSize?: string | undefined
  maxUserSendPerMinute?: number | undefined
  maxUserSendBurst?: number | undefined
  /** From chatmail.ini: the expiry ages, in seconds. */
  expiry?: { mails?: number | undefined; large?: number | undefined; inactive?: number | undefined } | undefined
  source?: string | undefined
}

export function buildConfig(o: InitOptions): Config {
  const control = checkValue(o.domain)
  if (control) throw usageError(`DOMAIN ${control} (got ${JSON.stringify(o.domain)})`)
  const check = checkDomain(o.domain)
  if (!check.ok) throw usageError(check.reason)
  const domain = check.domain
  const selfSignedByName = check.kind === 'ipv4' || domain.startsWith('_')
  const mode = o.tlsMode ?? (selfSignedByName ? 'self-signed' : 'acme')
  if (mode === 'acme' && selfSignedByName) {
    throw usageError(`ACME cannot issue a certificate for ${domain}`, 'use --tls self-signed or --tls manual')
  }
  if (mode === 'manual' && (!o.cert || !o.key)) {
    throw usageError('tls mode manual needs the certificate and key paths on the host', 'pass --cert PATH --key PATH')
  }
  const flags: [string, string | undefined, ValueCheck[]][] = [
    ['--acme-email', o.acmeEmail, [emailAddress]],
    ['--relay-url', o.relayUrl, [urlOf(['http', 'https'])]],
    ['--cert', o.cert, [hostPath]],
    ['--key', o.key, [hostPath]],
    ['--max-mailbox-size', o.maxMailboxSize, []],
  ]
  for (const [flag, value, checks] of flags) {
    const why = value === undefined || value === '' ? undefined : checkValue(value, ...checks)
    if (why) throw usageError(`${flag} ${why} (got ${JSON.stringify(value)})`)
  }
  return {
    domain,
    profile: o.profile,
    tls: {
      mode,
      acmeEmail: o.acmeEmail ?? '',
      acmeDirectory: LETSENCRYPT_DIRECTORY,
      ...(o.cert ? { cert: o.cert } : {}),
      ...(o.key ? { key: o.key } : {}),
    },
    turn: {
      secret: newTurnSecret(),
      host: domain,
      port: DEFAULT_PORTS.turn,
      tlsPort: DEFAULT_PORTS.turnTls,
      ttlSeconds: 86400,
    },
    iroh: { relayUrl: o.relayUrl ?? defaultRelayUrl(domain, mode), port: DEFAULT_PORTS.irohRelay },
    imap: { port: DEFAULT_PORTS.imap },
    mail: {
      maxMessageSize: o.maxMessageSize ?? 31457280,
      maxMailboxSize: o.maxMailboxSize ?? '500M',
      comment: '',
      maxSmtpRecipients: DEFAULT_MAX_SMTP_RECIPIENTS,
      maxUserSendPerMinute: o.maxUserSendPerMinute ?? 60,
      maxUserSendBurst: o.maxUserSendBurst ?? 10,
      deleteMailsAfterSeconds: o.expiry?.mails ?? DEFAULT_EXPIRY.deleteMailsAfterSeconds,
      deleteLargeAfterSeconds: o.expiry?.large ?? DEFAULT_EXPIRY.deleteLargeAfterSeconds,
    },
    accounts: {
      ...DEFAULT_ACCOUNTS,
      deleteInactiveAfterSeconds: o.expiry?.inactive ?? DEFAULT_ACCOUNTS.deleteInactiveAfterSeconds,
    },
    deploy: {},
    doctor: {},
    backup: {},
  }
}

export async function initConfig(o: InitOptions): Promise<{ path: string; config: Config }> {
  const config = buildConfig(o)
  const text = renderConfig(config, o.source ? `imported from ${o.source}` : undefined)
  // What we write must load: validate the rendered text before it lands.
  parseConfigText(text, o.path)
  await writePrivateFile(o.path, text, { force: o.force })
  return { path: o.path, config }
}
