/**
 * chatmail-metadata: our dict service behind dovecot's IMAP METADATA (the iroh relay URL and
 * fresh TURN credentials per lookup). Runs the bundled dist/remote/chatmail-metadata.js with
 * Debian's nodejs.
 */
import { formatDuration } from '../../protocols/duration.js'
import { PATHS } from '../../server/paths.js'
import { directory, file, pkg, service, user } from '../resources.js'
import type { ServiceModule } from '../service.js'
import { remoteProgram, render } from './common.js'

export const chatmailMetadata: ServiceModule = {
  name: 'chatmail-metadata',
  async build(ctx) {
    const c = ctx.config
    // Secret: readable only by the program that needs it.
    const secret = file(PATHS.turnSecret, `${c.turn.secret}\n`, {
      owner: 'chatmail-metadata',
      group: 'root',
      mode: '0400',
      secret: true,
    })
    const programFile = await remoteProgram(ctx, 'chatmail-metadata', PATHS.metadataProgram)
    const config = await render(
      ctx,
      PATHS.metadataConfig,
      'chatmail-metadata/chatmail-metadata.conf',
      {
        socket: PATHS.metadataSocket,
        socket_mode: '0660',
        domain: c.domain,
        turn_host: c.turn.host,
        turn_port: c.turn.port,
        turns_port: c.turn.tlsPort,
        turn_ttl: formatDuration(c.turn.ttlSeconds),
        iroh_relay_url: c.iroh.relayUrl,
        secret_file: PATHS.turnSecret,
        max_smtp_recipients: c.mail.maxSmtpRecipients,
      },
      { mode: '0644' },
    )
    const unit = await render(
      ctx,
      '/etc/systemd/system/chatmail-metadata.service',
      'chatmail-metadata/chatmail-metadata.service',
      {
        node: '/usr/bin/node',
        program: PATHS.metadataProgram,
        config: PATHS.metadataConfig,
        user: 'chatmail-metadata',
        group: 'vmail',
      },
    )
    return {
      // nodejs: Debian's, no npm on the host.
      packages: [pkg('nodejs')],
      users: [user('chatmail-metadata')],
      directories: [directory(PATHS.configDir), directory(PATHS.metadataDir)],
      files: [secret, programFile, config, unit],
      units: [
        service('chatmail-metadata.service', {
          restartOn: [programFile, unit],
          reloadOn: [config, secret],
          validate: [`/usr/bin/node ${PATHS.metadataProgram} --check ${PATHS.metadataConfig}`],
        }),
      ],
    }
  },
}
