/**
 * chatmail-accounts: the server's accounts. Dovecot's passdb/userdb (a first login creates an
 * account), postfix's recipient check, the sign-up endpoint /new behind nginx. Runs the bundled
 * dist/remote/chatmail-accounts.js with Debian's nodejs. Its accounts and invites are server data
 * in its systemd StateDirectory (/var/lib/chatmail-accounts), which it creates and no deploy touches.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cannotRun } from '../../lib/errors.js'
import { formatDuration } from '../../protocols/duration.js'
import { needsDclogin } from '../../signup/page.js'
import { ACCOUNTS } from '../../signup/remote.js'
import { directory, file, service, user } from '../resources.js'
import type { ServiceModule } from '../service.js'
import { MANAGED_BY, PATHS, render } from './common.js'

/** PBKDF2 rounds of new password hashes (dovecot's PBKDF2 scheme, HMAC-SHA1). */
export const PBKDF2_ROUNDS = 10_000

export const chatmailAccounts: ServiceModule = {
  name: 'chatmail-accounts',
  async build(ctx) {
    const c = ctx.config
    const programPath = join(ctx.distDir, 'remote', 'chatmail-accounts.js')
    const program = await readFile(programPath, 'utf8').catch(() => {
      throw cannotRun(`${programPath} is missing`, 'run `npm run build` first')
    })
    const programFile = file(ACCOUNTS.program, program, { mode: '0644' })
    const a = c.accounts
    const config = await render(
      ctx,
      ACCOUNTS.config,
      'chatmail-accounts/chatmail-accounts.conf',
      {
        managed_by: MANAGED_BY,
        domain: c.domain,
        data_dir: ACCOUNTS.dataDir,
        mail_root: '/home/vmail/mail',
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
        pbkdf2_rounds: PBKDF2_ROUNDS,
        self_signed: needsDclogin(c) ? 'yes' : 'no',
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
      },
    )
    return {
      users: [user('chatmail-accounts')],
      directories: [directory('/etc/chatmail'), directory(PATHS.metadataDir)],
      files: [programFile, config, unit],
      units: [
        service('chatmail-accounts.service', {
          restartOn: [programFile, unit],
          reloadOn: [config],
          validate: [`/usr/bin/node ${ACCOUNTS.program} --check ${ACCOUNTS.config}`],
        }),
      ],
    }
  },
}
