import * as Flags from '@oclif/core/flags'
import { loadConfig } from '../config/load.js'
import { BaseCommand, commonFlags, configFlag, destinationArg } from '../lib/base-command.js'
import { usageError } from '../lib/errors.js'
import { note } from '../lib/output.js'
import { prose } from '../lib/prose.js'
import { formatDuration, parseDuration } from '../protocols/duration.js'

export default class Invite extends BaseCommand {
  static override summary = 'Create an invite: a sign-up link (and QR code) for new accounts on the server.'
  static override description = prose`Asks the server's chatmail-accounts, over SSH, for an invite token that may create
--uses accounts until it expires, and prints the sign-up link with its QR code (on a terminal).
Scanned with Delta Chat, the link creates an account. It works whatever accounts.registration
says, unless it is "closed"; with registration = "invite" it is the only way to a new account.

On a server with a self-signed certificate (IP-only servers), Delta Chat's sign-up code cannot
accept the certificate: the link then opens the server's web page, which makes the account and
hands Delta Chat a login link that accepts the certificate.

Exit codes: 0 created, 1 the server refused, 2 usage error, 3 could not run (config, SSH, service).`
  static override examples = [
    { description: 'One account, valid for a week:', command: '<%= config.bin %> invite' },
    { description: 'Ten accounts within two days:', command: '<%= config.bin %> invite --uses 10 --expires 2d' },
    { description: 'For a script:', command: '<%= config.bin %> invite root@chat.example.org --json' },
  ]
  static override enableJsonFlag = true
  static override args = {
    destination: destinationArg,
  }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    uses: Flags.integer({ description: 'How many accounts the invite may create.', default: 1, min: 1, max: 100000 }),
    expires: Flags.string({ description: 'How long the invite is valid: 1h, 2d, 7d …', default: '7d' }),
    qr: Flags.boolean({ description: 'Print the QR code also when stdout is not a terminal.', default: false }),
    identity: Flags.string({ char: 'i', description: 'SSH private key file.', helpValue: 'FILE' }),
    'known-hosts': Flags.string({ description: 'known_hosts file to check the host key against.', helpValue: 'FILE' }),
    'ssh-config': Flags.string({ char: 'F', description: 'ssh_config file to read.', helpValue: 'FILE' }),
  }

  public async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Invite)
    const ttl = parseDuration(flags.expires)
    if (!ttl.ok) throw usageError(`--expires ${flags.expires} ${ttl.reason}`)
    const loaded = await loadConfig(flags.config)
    const c = loaded.config
    if (c.accounts.registration === 'closed') {
      throw usageError(
        'accounts.registration is "closed": an invite could not create an account',
        'set accounts.registration = "invite" (or "open") and deploy',
      )
    }
    const { deployTargetOptions, resolveDeployTarget } = await import('../app/deploy-host.js')
    const { describeTarget, SshSession, shellQuote: q, terminalPassphrase } = await import('../ssh/index.js')
    const { ACCOUNTS } = await import('../server/paths.js')
    const { inviteFromAnswer } = await import('../signup/remote.js')
    const target = await resolveDeployTarget(loaded, deployTargetOptions(args.destination, flags))
    if (!this.jsonEnabled()) note(`chatmail: asking ${describeTarget(target)} for an invite`)
    const ask = terminalPassphrase()
    const session = await SshSession.connectTo(target, ask ? { askPassphrase: ask } : {})
    let out: { code: number | null; stdout: string; stderr: string }
    try {
      out = await session.exec(
        `/usr/bin/node ${q(ACCOUNTS.program)} invite ${q(ACCOUNTS.config)} ${flags.uses} ${ttl.seconds}`,
      )
    } finally {
      session.close()
    }
    const invite = inviteFromAnswer(out)
    const { qrTerminal, signupLink } = await import('../signup/links.js')
    const link = signupLink(c, invite.token)
    const expires = new Date(invite.expires * 1000).toISOString().replace('.000Z', 'Z')
    const result = { link, token: invite.token, uses: invite.uses, expires, registration: invite.registration }
    if (this.jsonEnabled()) return result
    this.log(link)
    if (flags.qr || process.stdout.isTTY) this.log(qrTerminal(link))
    note(
      `chatmail: valid for ${invite.uses} account(s) until ${expires} (${formatDuration(ttl.seconds)}); registration is "${invite.registration}"`,
    )
    return undefined
  }
}
