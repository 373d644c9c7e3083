/**
 * Where things are on a chatmail host: the one place a path of the server is written. The deploy
 * installs there, the doctor's host checks and `chatmail dns` / `chatmail invite` read there.
 * (What listens and which units run: services.ts; DKIM and MTA-STS: federation.ts.)
 */

export const PATHS = {
  tlsDir: '/etc/chatmail/tls',
  tlsCert: '/etc/chatmail/tls/fullchain.pem',
  tlsKey: '/etc/chatmail/tls/privkey.pem',
  turnSecret: '/etc/chatmail/turn-secret',
  /** Our config files (metadata.conf, accounts.conf, filter.conf, …). */
  configDir: '/etc/chatmail',
  /** Server state of our own (the ACME webroot). */
  stateDir: '/var/lib/chatmail',
  metadataDir: '/usr/local/lib/chatmail',
  metadataProgram: '/usr/local/lib/chatmail/chatmail-metadata.js',
  metadataConfig: '/etc/chatmail/metadata.conf',
  metadataSocket: '/run/chatmail-metadata/metadata.socket',
  acmeWebroot: '/var/lib/chatmail/acme',
  irohRelay: '/usr/local/bin/iroh-relay',
  /** The vmail user's home, and the mailboxes in it. */
  vmailHome: '/home/vmail',
  mailRoot: '/home/vmail/mail',
} as const

/** Where chatmail-accounts lives on the host (the deploy installs it there; `chatmail invite` runs it). */
export const ACCOUNTS = {
  program: '/usr/local/lib/chatmail/chatmail-accounts.js',
  config: '/etc/chatmail/accounts.conf',
  dataDir: '/var/lib/chatmail-accounts',
  /** The accounts themselves (store.ts's ACCOUNTS_FILE in dataDir). */
  accountsFile: '/var/lib/chatmail-accounts/accounts',
  runDir: '/run/chatmail-accounts',
  // Each socket a service connects to lives in a directory named after that service's group, in
  // which it is born with the group (chatmail-accounts.service; issue 23 item 10e).
  dictSocket: '/run/chatmail-accounts/dovecot/dict.socket',
  socketmapSocket: '/run/chatmail-accounts/postfix/socketmap.socket',
  httpSocket: '/run/chatmail-accounts/www-data/http.socket',
  controlSocket: '/run/chatmail-accounts/control.socket',
  lastloginSocket: '/run/chatmail-accounts/vmail/lastlogin.socket',
  dovecotDict: '/etc/dovecot/accounts-dict.conf.ext',
} as const

/** chatmail-filter, postfix's milter. */
export const FILTER = {
  program: '/usr/local/lib/chatmail/chatmail-filter.js',
  config: '/etc/chatmail/filter.conf',
  socketDir: '/var/spool/postfix/chatmail-filter',
  socket: '/var/spool/postfix/chatmail-filter/milter.sock',
  /** The same socket as postfix's smtpd names it (relative to its queue directory, chroot or not). */
  postfixSocket: 'unix:chatmail-filter/milter.sock',
} as const

export const DOVECOT_USERS = '/etc/dovecot/users'
export const DOCTOR_PASSDB = '/etc/dovecot/doctor.passwd'
/** dovecot 2.4's passdb/userdb script for chatmail-accounts. */
export const ACCOUNTS_LUA = '/etc/dovecot/chatmail-accounts.lua'
/** postfix asks dovecot's quota-status here (check_policy_service unix:private/quota-status). */
export const QUOTA_STATUS_SOCKET = '/var/spool/postfix/private/quota-status'
/** dovecot.service's limits for many devices (templates/dovecot/dovecot.service.conf). */
export const DOVECOT_DROPIN = '/etc/systemd/system/dovecot.service.d/chatmail.conf'
/** The vmail user's inotify limits for IDLE push and hibernation (templates/dovecot/inotify-sysctl.conf). */
export const INOTIFY_SYSCTL = '/etc/sysctl.d/60-chatmail-dovecot.conf'

/** The deploy's own files on the host: its lock, who holds it, its audit log, its backups and uploads. */
export const LOCK_FILE = '/run/lock/chatmail-deploy.lock'
export const OWNER_FILE = '/run/lock/chatmail-deploy.owner'
export const AUDIT_LOG = '/var/log/chatmail-deploy.log'
/**
 * Held by the apply script while it runs. A deploy killed mid-apply leaves its script running on
 * the host (an SSH exec has no terminal to hang up); the next deploy waits for it before reading
 * facts, so it plans from what that script finished.
 */
export const APPLY_LOCK = '/run/lock/chatmail-deploy.apply'
export const BACKUP_ROOT = '/var/lib/chatmail-deploy/backup'
/** Where a local binary is uploaded before the apply script runs (one per sha256). */
export const uploadPath = (sha: string): string => `/var/lib/chatmail-deploy/upload/${sha}`

/** certbot's accounts, keys and certificates (ACME servers). */
export const LETSENCRYPT_DIR = '/etc/letsencrypt'
/** postfix's queue: the directories that hold mail it accepted and has not delivered yet. */
export const POSTFIX_QUEUE_DIR = '/var/spool/postfix'
export const POSTFIX_QUEUES = [
  'maildrop',
  'incoming',
  'active',
  'deferred',
  'hold',
  'corrupt',
  'defer',
  'bounce',
  'trace',
]

/** `chatmail backup` and `restore` on the host: restic's repository, its password, cache and restore staging. */
export const BACKUP = {
  stateDir: '/var/lib/chatmail-backup',
  repository: '/var/lib/chatmail-backup/repo',
  /** restic's password (RESTIC_PASSWORD_FILE), root 0600; its source is [backup] password in chatmail.toml. */
  passwordFile: '/etc/chatmail/backup-password',
  cacheDir: '/var/cache/chatmail-backup',
  /** Where a restore unpacks a snapshot before moving it into place. */
  stageDir: '/var/lib/chatmail-backup/stage',
  /** The users and groups of the backed-up host by name (a restore maps their ids onto the new host's). */
  ownersFile: '/var/lib/chatmail-backup/owners',
  /** The snapshot the host was restored from (a rerun of the same restore changes nothing). */
  restoredFile: '/var/lib/chatmail-backup/restored',
} as const

/** The paths whose file systems must not fill up: the system, mail, logs. */
export const DISK_PATHS = ['/', PATHS.vmailHome, '/var/log'] as const
