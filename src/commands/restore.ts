import * as Flags from '@oclif/core/flags'
import { loadConfig } from '../config/load.js'
import { BaseCommand, commonFlags, configFlag, deployFlags, destinationArg } from '../lib/base-command.js'
import { ExitCode, usageError } from '../lib/errors.js'
import { colourOn, note } from '../lib/output.js'
import { prose } from '../lib/prose.js'

export default class Restore extends BaseCommand {
  static override summary = 'Make a host the server of a backup: deploy, restore the data, check.'
  static override description =
    prose`Turns a Debian 12 or 13 host (a fresh one, or the server itself) into the server that
chatmail backup saved, with the chatmail.toml of that server: it deploys the stack, copies the
repository from --from to the host, has restic check every byte of it (a damaged or tampered
backup is refused before anything changes), stops the services, puts every account, mailbox,
queued message, DKIM and TLS key back with their owners (mapped by name) and modes, starts the
services, deploys again (nothing to change) and runs the doctor. Interrupted, it is run again and
finishes; run again after it finished, it changes nothing. It refuses a host that has accounts
of its own and was not restored before, unless --force.

DESTINATION and the SSH flags are as for deploy host. Point the domain's DNS at the new host
when the doctor is green (chatmail dns shows the records).

Exit codes: 0 restored and the doctor found nothing failing, 1 the backup was refused, the
restore or a doctor check failed, 2 usage error, 3 could not run (config, SSH).`
  static override examples = [
    {
      description: 'Restore the copy beside chatmail.toml onto a new host:',
      command: '<%= config.bin %> restore root@203.0.113.7 --yes --accept-new-host-key',
    },
  ]
  static override enableJsonFlag = true
  static override args = { destination: destinationArg }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    ...deployFlags,
    from: Flags.string({ description: 'The copy of the repository `chatmail backup` wrote.', helpValue: 'DIR' }),
    yes: Flags.boolean({ char: 'y', description: "Replace the host's server data without asking.", default: false }),
    force: Flags.boolean({ description: 'Restore also over a host that has accounts of its own.', default: false }),
  }

  public async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Restore)
    const loaded = await loadConfig(flags.config)
    if (!flags.yes) throw usageError("a restore replaces the host's server data", 'pass --yes to go ahead')
    const { defaultBackupDir } = await import('../app/backup.js')
    const { deployTargetOptions, resolveDeployTarget } = await import('../app/deploy-host.js')
    const { restoreHost } = await import('../app/restore.js')
    const { saveDoctorAccount } = await import('../config/doctor-account.js')
    const { describeTarget, SshSession, terminalPassphrase } = await import('../ssh/index.js')
    const json = this.jsonEnabled()
    const targetOptions = deployTargetOptions(args.destination, flags)
    const target = await resolveDeployTarget(loaded, targetOptions)
    if (!json) note(`chatmail: restoring onto ${describeTarget(target)}`)
    const ask = terminalPassphrase()
    const progress = (m: string) => (json ? undefined : note(`chatmail: ${m}`))
    const out = await restoreHost({
      ...targetOptions,
      loaded,
      connect: () => SshSession.connectTo(target, ask ? { askPassphrase: ask } : {}),
      localDir: flags.from ?? defaultBackupDir(loaded.path, loaded.config.domain),
      force: flags.force,
      skipDnsCheck: flags['skip-dns-check'],
      ...(flags['iroh-relay-source'] ? { irohRelaySource: flags['iroh-relay-source'] } : {}),
      ...(flags['iroh-relay-sha256'] ? { irohRelaySha256: flags['iroh-relay-sha256'] } : {}),
      onProgress: progress,
    })
    const made = out.first.newDoctorPassword
    if (made) await saveDoctorAccount(loaded.path, out.first.doctorUser, made)
    const doctor = out.last.doctor
    if (doctor?.status === 'fail') process.exitCode = ExitCode.failed
    const result = {
      snapshot: out.data.snapshot,
      restic: out.data.restic,
      already: out.data.already,
      copied: out.data.copy,
      changedBySecondDeploy: out.last.result.plan.changed,
      doctor: doctor?.status,
    }
    if (json) return result
    this.log(
      out.data.already
        ? `the host was restored from snapshot ${result.snapshot} already: nothing changed`
        : `restored snapshot ${result.snapshot} (copied ${out.data.copy.files} files to the host)`,
    )
    this.log(`second deploy: ${result.changedBySecondDeploy} changed`)
    if (doctor) {
      const { renderText } = await import('../doctor/report/plain.js')
      process.stdout.write(renderText(doctor, { colour: colourOn(process.stdout) }))
    }
    return undefined
  }
}
