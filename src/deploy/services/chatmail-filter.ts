/**
 * chatmail-filter: postfix's milter for encryption-only mail and the per-user send rate. Runs the
 * bundled dist/remote/chatmail-filter.js with Debian's nodejs; postfix's smtpd (25, 465, 587)
 * reaches it on a unix socket in its queue directory (see postfix's main.cf, smtpd_milters).
 */
import { FILTER, PATHS } from '../../server/paths.js'
import { directory, service, user } from '../resources.js'
import type { ServiceModule } from '../service.js'
import { MANAGED_BY, remoteProgram, render } from './common.js'

export const chatmailFilter: ServiceModule = {
  name: 'chatmail-filter',
  async build(ctx) {
    const c = ctx.config
    const programFile = await remoteProgram(ctx, 'chatmail-filter', FILTER.program)
    const config = await render(
      ctx,
      FILTER.config,
      'chatmail-filter/chatmail-filter.conf',
      {
        managed_by: MANAGED_BY,
        socket: FILTER.socket,
        max_message_size: c.mail.maxMessageSize,
        per_minute: c.mail.maxUserSendPerMinute,
        burst: c.mail.maxUserSendBurst,
      },
      { mode: '0644' },
    )
    const unit = await render(
      ctx,
      '/etc/systemd/system/chatmail-filter.service',
      'chatmail-filter/chatmail-filter.service',
      {
        managed_by: MANAGED_BY,
        node: '/usr/bin/node',
        program: FILTER.program,
        config: FILTER.config,
        socket_dir: FILTER.socketDir,
      },
    )
    return {
      users: [user('chatmail-filter')],
      directories: [
        directory(PATHS.configDir),
        directory(PATHS.metadataDir),
        directory(FILTER.socketDir, { owner: 'chatmail-filter', group: 'postfix', mode: '0750' }),
      ],
      files: [programFile, config, unit],
      units: [
        service('chatmail-filter.service', {
          restartOn: [programFile, unit],
          reloadOn: [config],
          validate: [`/usr/bin/node ${FILTER.program} --check ${FILTER.config}`],
        }),
      ],
    }
  },
}
