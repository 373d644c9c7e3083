import { dirname } from 'node:path'
import { LARGE_MESSAGE_BYTES } from '../../config/schema.js'
import { addressDomain } from '../../protocols/address.js'
import { formatDuration } from '../../protocols/duration.js'
import { ACCOUNTS, DOCTOR_PASSDB, DOVECOT_USERS, PATHS } from '../../server/paths.js'
import { selfSignedTls } from '../../signup/links.js'
import { directory, service, user } from '../resources.js'
import type { ServiceModule } from '../service.js'
import { doctorAddress, MANAGED_BY, remoteProgram, render } from './common.js'

export const chatmailAccounts: ServiceModule = {
  name: 'chatmail-accounts',
  async build(ctx) {
    const c = ctx.config
    const programFile = await remoteProgram(ctx, 'chatmail-accounts', ACCOUNTS.program)
    const a = c.accounts
    const expiryVars = {
      delete_inactive_after: formatDuration(a.deleteInactiveAfterSeconds),
      delete_mails_after: formatDuration(c.mail.deleteMailsAfterSeconds),
      delete_large_after: formatDuration(c.mail.deleteLargeAfterSeconds),
      large_message_size: LARGE_MESSAGE_BYTES,
    }
    // The doctor's address as dovecot spells its mailbox: user@[IP] on an IP-only server.
    const doctor = doctorAddress(c)
    const expireExempt = `${doctor.slice(0, doctor.lastIndexOf('@'))}@${addressDomain(c.domain)}`
    const config = await render(
      ctx,
      ACCOUNTS.config,
      'chatmail-accounts/chatmail-accounts.conf',
      {
        managed_by: MANAGED_BY,
        domain: c.domain,
        data_dir: ACCOUNTS.dataDir,
        mail_root: PATHS.mailRoot,
        dict_socket: ACCOUNTS.dictSocket,
        socketmap_socket: ACCOUNTS.socketmapSocket,
        http_socket: ACCOUNTS.httpSocket,
        control_socket: ACCOUNTS.controlSocket,
        registration: a.registration,
        username_min_length: a.usernameMinLength,
        username_max_length: a.usernameMaxLength,
        password_min_length: a.passwordMinLength,
        min_free_disk: a.minFreeDisk,
        min_available_memory: a.minAvailableMemory,
        max_creations_per_client: a.maxCreationsPerClient,
        creation_window: formatDuration(a.creationWindowSeconds),
        pbkdf2_rounds: a.passwordHashRounds,
        self_signed: selfSignedTls(c) ? 'yes' : 'no',
        lastlogin_socket: ACCOUNTS.lastloginSocket,
        ...expiryVars,
        expire_exempt: expireExempt,
        users_file: DOVECOT_USERS,
        // dovecot.conf's passdbs before this service, in its order.
        passwd_files: `${DOCTOR_PASSDB} ${DOVECOT_USERS}`,
      },
      { mode: '0644' },
    )
    const unit = await render(
      ctx,
      '/etc/systemd/system/chatmail-accounts.service',
      'chatmail-accounts/chatmail-accounts.service',
      {
        managed_by: MANAGED_BY,
        node: '/usr/bin/node',
        program: ACCOUNTS.program,
        config: ACCOUNTS.config,
        dict_dir: dirname(ACCOUNTS.dictSocket),
        socketmap_dir: dirname(ACCOUNTS.socketmapSocket),
        http_dir: dirname(ACCOUNTS.httpSocket),
        lastlogin_dir: dirname(ACCOUNTS.lastloginSocket),
      },
    )
    const expireVars = {
      managed_by: MANAGED_BY,
      node: '/usr/bin/node',
      program: ACCOUNTS.program,
      config: ACCOUNTS.config,
      mail_root: PATHS.mailRoot,
      ...expiryVars,
    }
    const expireUnit = await render(
      ctx,
      '/etc/systemd/system/chatmail-expire.service',
      'chatmail-accounts/chatmail-expire.service',
      expireVars,
    )
    const expireTimer = await render(
      ctx,
      '/etc/systemd/system/chatmail-expire.timer',
      'chatmail-accounts/chatmail-expire.timer',
      { managed_by: MANAGED_BY },
    )
    return {
      users: [user('chatmail-accounts')],
      directories: [directory(PATHS.configDir), directory(PATHS.metadataDir)],
      files: [programFile, config, unit, expireUnit, expireTimer],
      units: [
        service('chatmail-expire.timer', { restartOn: [expireTimer] }),
        service('chatmail-accounts.service', {
          restartOn: [programFile, unit],
          reloadOn: [config],
          validate: [`/usr/bin/node ${ACCOUNTS.program} --check ${ACCOUNTS.config}`],
        }),
      ],
    }
  },
}
