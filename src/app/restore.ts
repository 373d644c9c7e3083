/**
 * `chatmail restore` as a library: a host (fresh, or one that holds this server already) becomes
 * the server of the backup: a deploy from chatmail.toml, then the data (restoreData: the host
 * verifies the whole backup before it changes anything, maps owners by name, moves the data into
 * place, starts the services), then a second deploy, which finds nothing to change on a host
 * restored right and mends what is not, and the doctor. Run again after an interruption, it
 * finishes; run again after it finished, it changes nothing.
 */
import { ChatmailError, ExitCode } from '../lib/errors.js'
import type { SshSession } from '../ssh/index.js'
import { type RestoreDataResult, restoreData } from './backup.js'
import { type DeployHostOptions, type DeployHostResult, deployHost } from './deploy-host.js'

export interface RestoreOptions extends Omit<DeployHostOptions, 'doctor' | 'dryRun' | 'session'> {
  /** Opens a session to the host (each deploy closes its own). */
  connect(): Promise<SshSession>
  localDir: string
  force: boolean
}

export interface RestoreResult {
  first: DeployHostResult
  data: RestoreDataResult
  last: DeployHostResult
}

export async function restoreHost(o: RestoreOptions): Promise<RestoreResult> {
  const password = o.loaded.config.backup.password
  if (!password) {
    throw new ChatmailError(
      `${o.loaded.path} has no [backup] password`,
      ExitCode.usage,
      'restore with the chatmail.toml of the server the backup was made of (chatmail backup keeps the password there)',
    )
  }
  const progress = o.onProgress ?? (() => {})
  progress('deploying the stack')
  const first = await deployHost({ ...o, session: await o.connect(), dryRun: false, doctor: false })
  const session = await o.connect()
  const data = await restoreData({
    session,
    config: o.loaded.config,
    password,
    localDir: o.localDir,
    force: o.force,
    onProgress: progress,
  }).finally(() => session.close())
  progress('deploying again over the restored data, then the doctor')
  const last = await deployHost({ ...o, session: await o.connect(), dryRun: false, doctor: true })
  return { first, data, last }
}
