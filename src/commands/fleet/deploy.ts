import * as Flags from '@oclif/core/flags'
import { BaseCommand, commonFlags } from '../../lib/base-command.js'
import { usageError } from '../../lib/errors.js'
import { fleetFlags } from '../../lib/fleet-flags.js'
import { prose } from '../../lib/prose.js'

export default class FleetDeploy extends BaseCommand {
  static override summary = 'Run deploy host for every server of an inventory, in parallel.'
  static override description = prose`The inventory is a directory of chatmail.toml files, one per server (default:
./servers, or CHATMAIL_INVENTORY). Each server is deployed as chatmail deploy host deploys it, to
its deploy.destination (default root@DOMAIN), at most --concurrency at a time, then checked by
the doctor; a doctor account made on the way is saved in that server's file. Nothing is asked:
--yes applies every plan, --dry-run only plans. SSH keys come from the agent or unencrypted
files (no passphrase prompt while several deploys run). A server that fails never stops the
others. Each server's line goes to stderr as it finishes; the summary table goes to stdout,
--json prints {"status", "servers": [...]} instead.

Exit codes:
  0  every server deployed and its doctor found nothing failing
  1  at least one server failed (deploy, doctor, or its config)
  2  usage error (neither --yes nor --dry-run)
  3  could not run (no inventory, two files for one domain)`
  static override examples = [
    { description: 'The plans for every server of ./servers:', command: '<%= config.bin %> fleet deploy --dry-run' },
    { description: 'Deploy them, two at a time:', command: '<%= config.bin %> fleet deploy --yes --concurrency 2' },
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...commonFlags,
    ...fleetFlags,
    'dry-run': Flags.boolean({ char: 'n', description: 'Only plan; change nothing.', default: false }),
    yes: Flags.boolean({ char: 'y', description: 'Apply every plan without asking.', default: false }),
    identity: Flags.string({ char: 'i', description: 'SSH private key, tried first.', helpValue: 'FILE' }),
    'ssh-config': Flags.string({
      char: 'F',
      description: 'SSH config file (default: ~/.ssh/config).',
      helpValue: 'FILE',
    }),
    'known-hosts': Flags.string({ description: 'known_hosts file.', helpValue: 'FILE' }),
    'accept-new-host-key': Flags.boolean({
      description: 'Trust and record the key of a host not yet in known_hosts (never a changed key).',
      default: false,
    }),
    'skip-dns-check': Flags.boolean({ description: 'Do not check that DNS points at each host.', default: false }),
    'no-doctor': Flags.boolean({ description: 'Do not run the doctor after each deploy.', default: false }),
  }

  public async run(): Promise<unknown> {
    const { flags } = await this.parse(FleetDeploy)
    if (!flags.yes && !flags['dry-run']) {
      throw usageError('fleet deploy asks nothing', 'pass --yes to apply every plan, or --dry-run to only look')
    }
    const { deployTask, fleetCommand } = await import('../../app/fleet/index.js')
    const task = deployTask({
      dryRun: flags['dry-run'],
      skipDnsCheck: flags['skip-dns-check'],
      doctor: !flags['no-doctor'],
      acceptNewHostKey: flags['accept-new-host-key'],
      ...(flags.identity ? { identity: flags.identity } : {}),
      ...(flags['known-hosts'] ? { knownHosts: flags['known-hosts'] } : {}),
      ...(flags['ssh-config'] ? { sshConfig: flags['ssh-config'] } : {}),
    })
    return fleetCommand(flags, task, this.jsonEnabled())
  }
}
