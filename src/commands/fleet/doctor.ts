import * as Flags from '@oclif/core/flags'
import { BaseCommand, commonFlags } from '../../lib/base-command.js'
import { checkSelectionFlags } from '../../lib/check-flags.js'
import { fleetFlags } from '../../lib/fleet-flags.js'
import { prose } from '../../lib/prose.js'

export default class FleetDoctor extends BaseCommand {
  static override summary = 'Run the doctor against every server of an inventory, in parallel.'
  static override description = prose`The inventory is a directory of chatmail.toml files, one per server (default:
./servers, or CHATMAIL_INVENTORY). Each server is checked as chatmail doctor checks it with its
own config (its doctor account, TURN secret and stack), at most --concurrency at a time. A server
that fails, or whose file does not load, never stops the others. Each server's line goes to stderr
as it finishes; the summary table (server, result, time, what failed) goes to stdout, --json prints
{"status", "servers": [{"name", "config", "status", "summary", "durationMs", "result"}]} instead.

Exit codes:
  0  every server ok (warnings allowed, unless --strict)
  1  at least one server failed, or its config did not load
  2  usage error
  3  could not run (no inventory, two files for one domain)`
  static override examples = [
    { description: 'Every server of ./servers:', command: '<%= config.bin %> fleet doctor' },
    {
      description: 'Only TURN and the relay, eight servers at a time:',
      command: '<%= config.bin %> fleet doctor --inventory ~/chatmail/servers --only turn,relay --concurrency 8',
    },
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...commonFlags,
    ...fleetFlags,
    ...checkSelectionFlags,
    ca: Flags.string({ description: 'Also trust the CA certificate(s) in this PEM file.', helpValue: 'FILE' }),
    insecure: Flags.boolean({ description: 'Accept any certificate (TLS problems become warnings).', default: false }),
    strict: Flags.boolean({ description: 'A server with warnings counts as failed.', default: false }),
  }

  public async run(): Promise<unknown> {
    const { flags } = await this.parse(FleetDoctor)
    const { doctorTask, fleetCommand } = await import('../../app/fleet/index.js')
    const task = doctorTask({
      only: flags.only,
      skip: flags.skip,
      timeout: flags.timeout,
      ca: flags.ca,
      insecure: flags.insecure,
      strict: flags.strict,
    })
    return fleetCommand(flags, task, this.jsonEnabled())
  }
}
