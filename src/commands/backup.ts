import * as Flags from '@oclif/core/flags'
import { loadConfig } from '../config/load.js'
import { BaseCommand, commonFlags, configFlag, destinationArg, sshFlags } from '../lib/base-command.js'
import { note } from '../lib/output.js'
import { prose } from '../lib/prose.js'

export default class Backup extends BaseCommand {
  static override summary = "Back up the server's data with restic, and keep a copy on this machine."
  static override description =
    prose`Backs up everything the server needs to come back that chatmail.toml does not hold: the
accounts and invites, every mailbox, postfix's queue, the DKIM key, the TLS key and certbot's
ACME account, the expiry's state. Debian's restic does it on the host, into an encrypted
repository in /var/lib/chatmail-backup/repo: a live pass, then a consistent pass while postfix,
dovecot and chatmail-accounts are stopped (seconds: it reads only what changed since), then
retention (7 daily, 4 weekly, 6 monthly; restic prune and check weekly). The repository's new files are then
copied to --to on this machine (default: backup-DOMAIN beside chatmail.toml); a second backup of
an unchanged server moves almost nothing.

The repository password is [backup] password in chatmail.toml (made on the first backup; mode
0600); on the host it is in /etc/chatmail/backup-password (root, 0600). Without it the backup
cannot be read: keep chatmail.toml safe, and apart from the backup copy.

Exit codes: 0 backed up, 1 the backup failed on the host, 2 usage error, 3 could not run
(config, SSH, restic missing on the host).`
  static override examples = [
    { description: 'Back up, with the copy beside chatmail.toml:', command: '<%= config.bin %> backup' },
    {
      description: 'Into a directory of your choice, for a script:',
      command: '<%= config.bin %> backup root@chat.example.org --to /srv/backups/chat --json',
    },
  ]
  static override enableJsonFlag = true
  static override args = { destination: destinationArg }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    ...sshFlags,
    to: Flags.string({ description: 'Where this machine keeps its copy of the repository.', helpValue: 'DIR' }),
  }

  public async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Backup)
    const loaded = await loadConfig(flags.config)
    const { backupHost, defaultBackupDir, newBackupPassword } = await import('../app/backup.js')
    const { deployTargetOptions, resolveDeployTarget } = await import('../app/deploy-host.js')
    const { saveBackupPassword } = await import('../config/doctor-account.js')
    const { describeTarget, SshSession, terminalPassphrase } = await import('../ssh/index.js')
    const json = this.jsonEnabled()
    const target = await resolveDeployTarget(loaded, deployTargetOptions(args.destination, flags))
    let password = loaded.config.backup.password
    if (!password) {
      // Kept before it is used: a repository whose password is lost is lost.
      password = newBackupPassword()
      await saveBackupPassword(loaded.path, password)
      if (!json) note(`chatmail: made a backup password and kept it in ${loaded.path} ([backup] password)`)
    }
    const localDir = flags.to ?? defaultBackupDir(loaded.path, loaded.config.domain)
    if (!json) note(`chatmail: connecting to ${describeTarget(target)}`)
    const ask = terminalPassphrase()
    const session = await SshSession.connectTo(target, ask ? { askPassphrase: ask } : {})
    const out = await backupHost({
      session,
      config: loaded.config,
      password,
      localDir,
      ...(json ? {} : { onProgress: (m: string) => note(`chatmail: ${m}`) }),
    }).finally(() => session.close())
    const result = {
      snapshot: out.snapshot,
      restic: out.restic,
      files: out.final.total_files_processed,
      bytes: out.final.total_bytes_processed,
      filesNew: out.final.files_new,
      filesChanged: out.final.files_changed,
      dataAdded: out.final.data_added + out.warm.data_added,
      freezeSeconds: out.freezeMs / 1000,
      copied: out.copy,
      localDir: out.localDir,
      seconds: out.ms / 1000,
    }
    if (json) return result
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`
    this.log(`snapshot ${result.snapshot} (restic ${result.restic}): ${result.files} files, ${mb(result.bytes)}`)
    this.log(
      `  new ${result.filesNew}, changed ${result.filesChanged}, added to the repository ${mb(result.dataAdded)}`,
    )
    this.log(`  services stopped for ${result.freezeSeconds.toFixed(1)} s (postfix, dovecot, chatmail-accounts)`)
    this.log(`  copied ${out.copy.files} files (${mb(out.copy.bytes)}) to ${localDir}; ${out.copy.removed} pruned`)
    this.log(`  done in ${result.seconds.toFixed(1)} s`)
    return undefined
  }
}
