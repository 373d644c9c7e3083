import * as Flags from '@oclif/core/flags'
import { saveDoctorAccount } from '../../config/doctor-account.js'
import { loadConfig } from '../../config/load.js'
import type { DoctorReport } from '../../doctor/model.js'
import { BaseCommand, commonFlags, configFlag, deployFlags, destinationArg } from '../../lib/base-command.js'
import { ExitCode, usageError } from '../../lib/errors.js'
import { colourOn, note } from '../../lib/output.js'
import { prose } from '../../lib/prose.js'

export default class DeployHost extends BaseCommand {
  static override summary = 'Install and configure the whole chatmail stack on a Debian host over SSH.'
  static override description =
    prose`Takes a fresh Debian 12 or 13 host to a working chatmail server, over one SSH connection:
postfix, dovecot with IMAP METADATA, chatmail-metadata (fresh TURN credentials per lookup),
coturn with TLS, iroh-relay v0.35 behind nginx, TLS certificates and systemd units.

It gathers the host's facts in one batch, checks before any change (Debian version, disk,
who holds each port, DNS of the domain), shows the plan with file diffs, then changes only
what differs: files are written atomically, configs are validated before any restart, a
service restarts only when its own inputs changed. A second run changes nothing. A lock on
the host keeps two deploys apart; each run appends a line to /var/log/chatmail-deploy.log.
At the end the doctor checks the server from the outside.

DESTINATION is user@host[:port] or a Host alias from ~/.ssh/config (default: deploy.destination,
else root@DOMAIN). The SSH config is read as ssh reads it (HostName, User, Port, IdentityFile,
IdentitiesOnly, UserKnownHostsFile, ProxyJump). Keys: -i first, then the ssh-agent, then
~/.ssh/id_rsa, id_ecdsa, id_ed25519 (OpenSSH's order); an encrypted key asks for its passphrase.
The host key (and each jump host's) must be in known_hosts; a new host needs
--accept-new-host-key, a changed key (or another key type) is refused.
Without a terminal, --yes is required (or --dry-run).

Exit codes: 0 deployed and the doctor found nothing failing, 1 the deploy or a doctor check
failed, 2 usage error, 3 could not run (config, SSH connection, key refused).`
  static override examples = [
    {
      description: 'Show what would change, with diffs:',
      command: '<%= config.bin %> deploy host root@chat.example.org --dry-run',
    },
    {
      description: "Deploy from CI, then keep the doctor's verdict:",
      command: '<%= config.bin %> deploy host --yes --json > deploy.json',
    },
    {
      description: 'A new host, with a key file and the relay from a mirror:',
      command:
        '<%= config.bin %> deploy host root@203.0.113.5 -i ~/.ssh/id_ed25519 --accept-new-host-key --iroh-relay-source https://mirror.example.org/iroh/',
    },
  ]
  static override enableJsonFlag = true
  static override args = {
    destination: destinationArg,
  }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    'dry-run': Flags.boolean({ char: 'n', description: 'Show the plan with diffs; change nothing.', default: false }),
    yes: Flags.boolean({
      char: 'y',
      description: 'Apply without asking (required without a terminal).',
      default: false,
    }),
    ...deployFlags,
    'no-doctor': Flags.boolean({ description: 'Do not run the doctor after the deploy.', default: false }),
  }

  public async run(): Promise<unknown> {
    const { args, flags } = await this.parse(DeployHost)
    const view = {
      json: this.jsonEnabled(),
      dryRun: flags['dry-run'],
      yes: flags.yes,
      verbose: flags.verbose,
      tty: Boolean(process.stderr.isTTY),
    }
    // The config first: without one nothing else matters (issue 15).
    const loaded = await loadConfig(flags.config)
    const render = await import('../../app/deploy-render.js')
    if (render.needsYes(view, Boolean(process.stdin.isTTY))) {
      throw usageError('no terminal to confirm the plan on', 'pass --yes to apply, or --dry-run to only look')
    }
    const { deployHost, deployTargetOptions, resolveDeployTarget } = await import('../../app/deploy-host.js')
    const { describeTarget, SshSession, terminalPassphrase } = await import('../../ssh/index.js')
    const target = await resolveDeployTarget(loaded, deployTargetOptions(args.destination, flags))
    if (!view.json) {
      for (const n of target.notes) note(`chatmail: ${n}`)
      note(`chatmail: connecting to ${describeTarget(target)}`)
    }
    // Connected before the progress display starts, so a passphrase prompt has the terminal to itself.
    const ask = terminalPassphrase()
    const session = await SshSession.connectTo(target, ask ? { askPassphrase: ask } : {})
    const progress = render.deployProgress(view, note)
    const out = await progress
      .run(() =>
        deployHost({
          loaded,
          session,
          acceptNewHostKey: flags['accept-new-host-key'],
          skipDnsCheck: flags['skip-dns-check'],
          dryRun: view.dryRun,
          ...(flags['iroh-relay-source'] ? { irohRelaySource: flags['iroh-relay-source'] } : {}),
          ...(flags['iroh-relay-sha256'] ? { irohRelaySha256: flags['iroh-relay-sha256'] } : {}),
          doctor: !flags['no-doctor'],
          onProgress: (m) => progress.update(m),
          confirm: render.confirmPlan(view),
        }),
      )
      .finally(() => session.close())
    if (out.newDoctorPassword) {
      await saveDoctorAccount(loaded.path, out.doctorUser, out.newDoctorPassword)
      if (!view.json) note(`chatmail: saved the doctor account's new password in ${loaded.path}`)
    }
    if (out.doctor?.status === 'fail' || render.declined(out, view.dryRun)) process.exitCode = ExitCode.failed
    if (view.json) return render.deploySummary(out, view.dryRun)
    for (const line of render.deployText(out, view)) this.log(line)
    if (out.doctor) await this.printDoctor(out.doctor)
    return undefined
  }

  private async printDoctor(report: DoctorReport): Promise<void> {
    const { renderText } = await import('../../doctor/report/plain.js')
    const colour = colourOn(process.stdout)
    process.stdout.write(renderText(report, { colour }))
  }
}
