import { readFile } from 'node:fs/promises'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { type IniImport, importIni } from '../config/ini.js'
import { initConfig } from '../config/init.js'
import { PROFILES, TLS_MODES } from '../config/schema.js'
import { BaseCommand, commonFlags, configFlag } from '../lib/base-command.js'
import { describeFsError, usageError } from '../lib/errors.js'
import { note } from '../lib/output.js'
import { prose } from '../lib/prose.js'

export default class Init extends BaseCommand {
  static override summary = 'Write chatmail.toml for a new server, with a fresh TURN secret.'
  static override description =
    prose`Writes the config file (mode 0600) that every other command reads: the domain, the stack
profile, the TLS mode, ports, the iroh relay URL and a fresh random TURN secret (32 bytes).
Refuses to overwrite an existing file unless --force is given.

DOMAIN is a fully qualified domain name, or an IPv4 address for an IP-only server (which then
uses a self-signed certificate). With --from-ini, the keys of cmdeploy's chatmail.ini that
have a meaning here are imported, and the ones that do not are listed.

Exit codes: 0 written, 2 usage error (bad domain or flag), 3 could not write or read a file.`
  static override examples = [
    {
      description: "A server with Let's Encrypt certificates:",
      command: '<%= config.bin %> init chat.example.org --acme-email admin@example.org',
    },
    { description: 'An IP-only test server (self-signed TLS):', command: '<%= config.bin %> init 203.0.113.5' },
    {
      description: 'Take over a server set up with cmdeploy:',
      command: '<%= config.bin %> init --from-ini ../relay/chatmail.ini',
    },
  ]
  static override args = {
    domain: Args.string({ description: 'Mail domain of the server (or its IPv4 address).', required: false }),
  }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    force: Flags.boolean({ char: 'f', description: 'Overwrite an existing config file.', default: false }),
    profile: Flags.string({ description: 'Server stack.', options: [...PROFILES], default: 'dovecot' }),
    tls: Flags.string({
      description: 'How the server gets its certificate (default: acme, or self-signed for an IP).',
      options: [...TLS_MODES],
    }),
    'acme-email': Flags.string({ description: 'Contact address for the ACME account.', helpValue: 'ADDRESS' }),
    cert: Flags.string({ description: 'tls manual: path of the certificate chain on the host.', helpValue: 'PATH' }),
    key: Flags.string({ description: 'tls manual: path of the private key on the host.', helpValue: 'PATH' }),
    'relay-url': Flags.string({
      description: 'iroh relay URL advertised to clients (default https://DOMAIN).',
      helpValue: 'URL',
    }),
    'from-ini': Flags.string({ description: "Import settings from cmdeploy's chatmail.ini.", helpValue: 'FILE' }),
  }

  public async run(): Promise<void> {
    const { args, flags } = await this.parse(Init)
    let imported: IniImport | undefined
    if (flags['from-ini']) {
      const file = flags['from-ini']
      const text = await readFile(file, 'utf8').catch((err: unknown) => {
        throw describeFsError(err, file, 'ini file')
      })
      imported = importIni(text, file)
    }
    const domain = args.domain ?? imported?.domain
    if (!domain) throw usageError('missing DOMAIN', 'give the mail domain, e.g. `chatmail init chat.example.org`')
    if (args.domain && imported?.domain && args.domain !== imported.domain) {
      note(`note: using ${args.domain} from the command line, not mail_domain ${imported.domain} from the ini file`)
    }
    const result = await initConfig({
      path: flags.config,
      force: flags.force,
      domain,
      profile: flags.profile as (typeof PROFILES)[number],
      tlsMode: (flags.tls as (typeof TLS_MODES)[number] | undefined) ?? imported?.tlsMode,
      acmeEmail: flags['acme-email'] ?? imported?.acmeEmail,
      relayUrl: flags['relay-url'] ?? imported?.relayUrl,
      cert: flags.cert ?? imported?.cert,
      key: flags.key ?? imported?.key,
      maxMessageSize: imported?.maxMessageSize,
      maxMailboxSize: imported?.maxMailboxSize,
      maxUserSendPerMinute: imported?.maxUserSendPerMinute,
      maxUserSendBurst: imported?.maxUserSendBurst,
      expiry: {
        mails: imported?.deleteMailsAfterSeconds,
        large: imported?.deleteLargeAfterSeconds,
        inactive: imported?.deleteInactiveAfterSeconds,
      },
      source: flags['from-ini'],
    })
    if (imported) {
      note(`imported from ${flags['from-ini']}: ${imported.imported.join(', ') || 'nothing'}`)
      if (imported.ignored.length) note(`ignored (no meaning here): ${imported.ignored.join(', ')}`)
    }
    this.log(
      `wrote ${result.path} for ${result.config.domain} (${result.config.profile}, tls ${result.config.tls.mode}, mode 0600)`,
    )
    note(`next: chatmail deploy host root@${result.config.domain}`)
  }
}
