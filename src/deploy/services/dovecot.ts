/**
 * dovecot: IMAP (with METADATA through chatmail-metadata), LMTP delivery from postfix, SASL for
 * postfix. Accounts: the doctor's in its own managed file; the server's accounts in
 * /etc/dovecot/users, server data that a deploy creates once (a comment on its lines) and never rewrites.
 *
 * Debian 12 ships dovecot 2.3, Debian 13 dovecot 2.4, whose configuration grammar is new: the
 * same server is rendered from templates/dovecot/dovecot.conf (2.3) or templates/dovecot/2.4/,
 * for the dovecot the host will run (src/deploy/versions.ts).
 */

import { type Config, sizeBytes } from '../../config/schema.js'
import { addressDomain } from '../../protocols/address.js'
import {
  ACCOUNTS,
  ACCOUNTS_LUA,
  DOCTOR_PASSDB,
  DOVECOT_DROPIN,
  DOVECOT_USERS,
  INOTIFY_SYSCTL,
  PATHS,
  QUOTA_STATUS_SOCKET,
} from '../../server/paths.js'
import { shellQuote as q } from '../../ssh/quote.js'
import { command, dataFile, directory, file, pkg, service, user } from '../resources.js'
import { portClaims, type ServiceModule } from '../service.js'
import { dovecotMajor } from '../versions.js'
import { baseVars, doctorAddress, MANAGED_BY, obsoleteManagedFiles, render, ssha512 } from './common.js'
import { certificateChanges } from './tls.js'

/** dovecot.service's limits for many devices (templates/dovecot/dovecot.service.conf, at DOVECOT_DROPIN). */
export const DOVECOT_UNIT_LIMITS = { max_open_files: 65536, max_tasks: 16384 } as const
/** The vmail user's inotify limits for IDLE push and hibernation (templates/dovecot/inotify-sysctl.conf). */
export const INOTIFY_LIMITS = { max_user_instances: 65536, max_user_watches: 262144 } as const

/**
 * Applies the inotify limits now (a reboot applies the file anyway), unless they are in effect
 * already or /proc/sys/fs cannot be written (a container, where the host's limits apply).
 */
function inotifyLimits(): ReturnType<typeof command> {
  const proc = (k: keyof typeof INOTIFY_LIMITS) => `/proc/sys/fs/inotify/${k}`
  const inEffect = (Object.keys(INOTIFY_LIMITS) as (keyof typeof INOTIFY_LIMITS)[])
    .map((k) => `[ "$(cat ${proc(k)})" -ge ${INOTIFY_LIMITS[k]} ]`)
    .join(' && ')
  return command(
    'dovecot-inotify-limits',
    `apply the inotify limits of ${INOTIFY_SYSCTL}`,
    `[ ! -w ${proc('max_user_instances')} ] || { ${inEffect}; }`,
    `/usr/lib/systemd/systemd-sysctl ${INOTIFY_SYSCTL}`,
  )
}

/** What a sender is told at RCPT when the recipient's mailbox is full. */
export const QUOTA_FULL_REPLY = '552 5.2.2 Mailbox is full: the recipient must free space first'

function quotaVars(c: Config): Record<string, string | number> {
  return {
    // Kilobytes: both dovecots read `k`, and no rounding of "1500K" or "1G" goes wrong.
    quota_storage: `${Math.floor(sizeBytes(c.mail.maxMailboxSize) / 1024)}k`,
    max_message_size: c.mail.maxMessageSize,
    quota_status_overquota: QUOTA_FULL_REPLY,
    quota_status_socket: QUOTA_STATUS_SOCKET,
    lastlogin_socket: ACCOUNTS.lastloginSocket,
  }
}

export const dovecot: ServiceModule = {
  name: 'dovecot',
  async build(ctx) {
    const c = ctx.config
    const doctorUser = doctorAddress(c)
    const passdb = { owner: 'root', group: 'dovecot', mode: '0640' }
    const doctor = file(
      DOCTOR_PASSDB,
      `${doctorUser}:${ssha512(ctx.doctorPassword, doctorUser, c.turn.secret)}::::::\n`,
      {
        ...passdb,
        secret: true,
      },
    )
    // Created once with a comment on the lines it takes (server data: an existing file keeps what it has).
    const mailDomain = c.domain.toLowerCase()
    const usersHeader = await render(ctx, DOVECOT_USERS, 'dovecot/users', {
      domain: c.domain,
      example_address: `admin@${addressDomain(c.domain)}`,
      mail_domain: mailDomain,
    })
    const users = dataFile(DOVECOT_USERS, usersHeader.content, passdb)
    const version = dovecotMajor(ctx.host.release, ctx.host.packages.get('dovecot-core'))
    const v24 = version === '2.4'
    // chatmail-accounts answers passdb and userdb lookups on its dict socket: dovecot 2.3 asks it
    // with its dict passdb/userdb, 2.4 (which has none) with a Lua script speaking the same protocol.
    const accounts = v24
      ? await render(ctx, ACCOUNTS_LUA, 'dovecot/2.4/chatmail-accounts.lua', {
          managed_by: MANAGED_BY,
          dict_socket: ACCOUNTS.dictSocket,
        })
      : await render(ctx, ACCOUNTS.dovecotDict, 'dovecot/accounts-dict.conf.ext', {
          managed_by: MANAGED_BY,
          dict_socket: ACCOUNTS.dictSocket,
        })
    const conf = await render(
      ctx,
      '/etc/dovecot/dovecot.conf',
      v24 ? 'dovecot/2.4/dovecot.conf' : 'dovecot/dovecot.conf',
      {
        ...baseVars(c),
        imap_port: c.imap.port,
        metadata_socket: PATHS.metadataSocket,
        doctor_passdb: DOCTOR_PASSDB,
        users_passdb: DOVECOT_USERS,
        // The passwd-file accounts' mailboxes where chatmail-accounts puts its accounts' (the bare IP).
        mail_domain: mailDomain,
        ...(v24 ? { accounts_lua: ACCOUNTS_LUA } : { accounts_dict: ACCOUNTS.dovecotDict }),
        server_admin_line: c.mail.admin
          ? `mail_server_admin = mailto:${c.mail.admin}`
          : '# mail_server_admin: mail.admin is not set',
        server_comment: c.mail.comment,
        ...quotaVars(c),
      },
    )
    // Deploys before the doctor had its own file kept its account in /etc/dovecot/users: take it out
    // there, so an old password stops working when the doctor's changes.
    const u = q(doctorUser)
    const moveDoctor = command(
      'dovecot-doctor-account-moved',
      `remove the doctor account from ${DOVECOT_USERS} (it has its own file, ${DOCTOR_PASSDB})`,
      `[ ! -e ${DOVECOT_USERS} ] || awk -F: -v u=${u} '$1 == u { found = 1 } END { exit found }' ${DOVECOT_USERS}`,
      `awk -F: -v u=${u} '$1 != u' ${DOVECOT_USERS} >${DOVECOT_USERS}.new && chown --reference=${DOVECOT_USERS} ${DOVECOT_USERS}.new && chmod --reference=${DOVECOT_USERS} ${DOVECOT_USERS}.new && mv -f ${DOVECOT_USERS}.new ${DOVECOT_USERS}`,
    )
    // After an upgrade in place from Debian 12, the 2.3 dict passdb/userdb file is left unused.
    const otherRelease = obsoleteManagedFiles('dovecot-other-release-files', `dovecot ${version} does not read it`, [
      v24 ? ACCOUNTS.dovecotDict : ACCOUNTS_LUA,
    ])
    const dropin = await render(ctx, DOVECOT_DROPIN, 'dovecot/dovecot.service.conf', {
      managed_by: MANAGED_BY,
      ...DOVECOT_UNIT_LIMITS,
    })
    const inotify = await render(ctx, INOTIFY_SYSCTL, 'dovecot/inotify-sysctl.conf', {
      managed_by: MANAGED_BY,
      ...INOTIFY_LIMITS,
    })
    return {
      // 2.4: the Lua passdb/userdb, and the Lua modules its script uses (unix sockets, JSON).
      packages: [
        pkg('dovecot-imapd'),
        pkg('dovecot-lmtpd'),
        ...(v24 ? [pkg('dovecot-auth-lua'), pkg('lua-socket'), pkg('lua-cjson')] : []),
      ],
      users: [user('vmail', { home: PATHS.vmailHome })],
      directories: [directory(PATHS.mailRoot, { owner: 'vmail', mode: '0700' })],
      commands: [moveDoctor, otherRelease, inotifyLimits()],
      files: [doctor, users, conf, accounts, dropin, inotify],
      units: [
        service('dovecot.service', {
          restartOn: [conf, accounts, dropin, ...certificateChanges(c)],
          reloadOn: [doctor],
          // -x reads the files the configuration names (the certificate and key): -n alone does not.
          validate: ['doveconf -x -n >/dev/null'],
        }),
      ],
      ports: portClaims(c, 'dovecot'),
    }
  },
}
