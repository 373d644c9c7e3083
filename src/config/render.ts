/** Writes chatmail.toml: commented, stable key order, mode 0600 (it holds the TURN secret). */
import { randomBytes } from 'node:crypto'
import { open, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { stringify } from 'smol-toml'
import { ChatmailError, ExitCode } from '../lib/errors.js'
import { addressDomain } from '../protocols/address.js'
import { formatDuration } from '../protocols/duration.js'
import { type Config, defaultRelayUrl, LETSENCRYPT_DIRECTORY } from './schema.js'

/** A fresh TURN secret: 32 random bytes, base64url (43 characters, safe in any config file). */
export function newTurnSecret(): string {
  return randomBytes(32).toString('base64url')
}

const val = (x: unknown): string => stringify({ x }).replace(/^x = /, '').trim()

export function renderConfig(c: Config, note?: string): string {
  const lines: string[] = []
  const kv = (key: string, value: unknown, comment?: string) =>
    lines.push(`${key} = ${val(value)}${comment ? `  # ${comment}` : ''}`)
  const opt = (key: string, value: unknown, example: string, comment: string) =>
    value === undefined || value === '' ? lines.push(`# ${key} = ${example}  # ${comment}`) : kv(key, value, comment)
  lines.push('# chatmail.toml: one chatmail server. Keep it private (mode 0600): it holds the TURN secret.')
  if (note) lines.push(`# ${note}`)
  lines.push('')
  kv('domain', c.domain, 'the mail domain; addresses are user@domain')
  kv('profile', c.profile, 'server stack: dovecot (postfix + dovecot), the only one')
  lines.push('', '[tls]')
  kv('mode', c.tls.mode, 'acme | self-signed | manual')
  opt('acme_email', c.tls.acmeEmail, '"admin@example.org"', 'contact for the ACME account')
  if (c.tls.acmeDirectory !== LETSENCRYPT_DIRECTORY) kv('acme_directory', c.tls.acmeDirectory)
  else lines.push(`# acme_directory = ${val(LETSENCRYPT_DIRECTORY)}`)
  opt('cert', c.tls.cert, '"/etc/ssl/certs/mail.pem"', 'manual mode: certificate chain on the host')
  opt('key', c.tls.key, '"/etc/ssl/private/mail.key"', 'manual mode: private key on the host')
  lines.push('', '[turn]')
  kv('secret', c.turn.secret, 'shared with coturn; never share it')
  if (c.turn.host !== c.domain) kv('host', c.turn.host, 'TURN host given to clients')
  else lines.push('# host = "<domain>"  # TURN host given to clients')
  kv('port', c.turn.port, 'TURN over UDP and TCP')
  kv('tls_port', c.turn.tlsPort, 'TURN over TLS')
  kv('ttl', formatDuration(c.turn.ttlSeconds), 'lifetime of the credentials handed to clients (at most 5d)')
  if (c.turn.allowLongTtl) kv('allow_long_ttl', true, 'accept a ttl over 5d: a leaked credential lives that long')
  opt('external_ip', c.turn.externalIp, '"203.0.113.5/10.0.0.5"', 'behind NAT: public IP, or "public/private"')
  lines.push('', '[iroh]')
  if (c.iroh.relayUrl !== defaultRelayUrl(c.domain, c.tls.mode, c.iroh.port)) kv('relay_url', c.iroh.relayUrl)
  else lines.push(`# relay_url = ${val(c.iroh.relayUrl)}  # advertised to clients; "" for none`)
  kv('port', c.iroh.port, 'local port of iroh-relay behind nginx')
  lines.push('', '[imap]')
  kv('port', c.imap.port)
  lines.push('', '[mail]')
  kv('max_message_size', c.mail.maxMessageSize, 'bytes; larger mail is refused at SMTP time')
  kv('max_mailbox_size', c.mail.maxMailboxSize, 'quota per account; a full mailbox refuses mail at RCPT')
  opt('admin', c.mail.admin, '"ops@example.org"', 'the operator, served as /shared/admin and on the web page')
  if (c.mail.comment) kv('comment', c.mail.comment)
  kv('max_smtp_recipients', c.mail.maxSmtpRecipients, 'recipients per message Delta Chat may use')
  kv('max_user_send_per_minute', c.mail.maxUserSendPerMinute, 'messages a user may send a minute (chatmail-filter)')
  kv('max_user_send_burst', c.mail.maxUserSendBurst, 'messages a user may send at once before the rate applies')
  kv('delete_mails_after', formatDuration(c.mail.deleteMailsAfterSeconds), 'the daily expiry deletes older messages')
  kv('delete_large_after', formatDuration(c.mail.deleteLargeAfterSeconds), 'and messages over 200 kB older than this')
  lines.push('', '[accounts]')
  const a = c.accounts
  kv('registration', a.registration, 'open | invite (`chatmail invite`) | closed')
  kv('username_min_length', a.usernameMinLength, 'new addresses: length of the part before @')
  kv('username_max_length', a.usernameMaxLength)
  kv('password_min_length', a.passwordMinLength)
  kv(
    'password_hash_rounds',
    a.passwordHashRounds,
    'PBKDF2 rounds of a password picked on a first login (each login: one hash)',
  )
  kv('min_free_disk', a.minFreeDisk, 'no new accounts below this free disk')
  kv('min_available_memory', a.minAvailableMemory, 'no new accounts below this available memory')
  kv('max_creations_per_client', a.maxCreationsPerClient, 'new accounts per client address per window')
  kv('creation_window', formatDuration(a.creationWindowSeconds))
  kv(
    'delete_inactive_after',
    formatDuration(a.deleteInactiveAfterSeconds),
    'accounts without a login this long are deleted, with their mail',
  )
  lines.push('', '[deploy]')
  opt('destination', c.deploy.destination, `"root@${c.domain}"`, 'user@host[:port] for `chatmail deploy host`')
  opt(
    'iroh_relay_source',
    c.deploy.irohRelaySource,
    '"https://mirror.example.org/iroh/"',
    'where the iroh-relay tarball comes from',
  )
  opt(
    'iroh_relay_sha256',
    c.deploy.irohRelaySha256,
    '"<64 hex digits>"',
    'only for a build other than the pinned v0.35.0',
  )
  lines.push('', '[doctor]')
  opt('user', c.doctor.user, `"doctor@${addressDomain(c.domain)}"`, 'account `chatmail doctor` logs in with')
  opt('password', c.doctor.password, '"..."', 'its password')
  lines.push('', '[backup]')
  opt('password', c.backup.password, '"..."', "restic's repository password (made by `chatmail backup`); keep a copy")
  return `${lines.join('\n')}\n`
}

/** Write a file atomically with a mode set before it becomes visible. */
export async function writePrivateFile(path: string, text: string, opts: { force: boolean }): Promise<void> {
  if (!opts.force) {
    const exists = await stat(path).then(
      () => true,
      () => false,
    )
    if (exists) {
      throw new ChatmailError(
        `${path} already exists; not overwriting it`,
        ExitCode.cannotRun,
        'use --force to replace it',
      )
    }
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  const fh = await open(tmp, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new ChatmailError(
      `cannot write ${path}: ${err.code ?? err.message}`,
      ExitCode.cannotRun,
      'check the directory exists and is writable',
    )
  })
  try {
    await fh.chmod(0o600)
    await fh.writeFile(text, 'utf8')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw new ChatmailError(`cannot write ${path}: ${(err as Error).message}`, ExitCode.cannotRun)
  }
}
