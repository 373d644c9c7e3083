/**
 * `chatmail backup` and `chatmail restore` as a library (docs/design/backup.md). A backup runs
 * Debian's restic on the host (templates/shell/backup.sh): a live pass, then a consistent pass
 * while the services that write server data are stopped, retention, `restic check`; then the
 * repository's new files are copied to the operator's machine (backup-repo.ts). A restore deploys
 * the host, copies the repository there, and lets the host verify every byte before it moves the
 * data into place and deploys again (which changes nothing, or mends) and runs the doctor.
 * What is server data comes from the server description (`describeServer(config).dataPaths`).
 */
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import { ChatmailError, cannotRun, ExitCode } from '../lib/errors.js'
import { hostShell } from '../lib/host-shell.js'
import { ACCOUNTS, BACKUP, POSTFIX_QUEUE_DIR } from '../server/paths.js'
import { describeServer } from '../server/services.js'
import { shellQuote as q, type SshSession } from '../ssh/index.js'
import { copyRepository, hostRepo, localRepo, type RepoCopy } from './backup-repo.js'

/** Retention: restic forget's policy for the consistent snapshots. */
export const RETENTION = ['--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '6'] as const

/** Where the script finds and puts things; a test runs it on loopback with its own directories. */
export interface HostLayout {
  repository: string
  passwordFile: string
  cacheDir: string
  stateDir: string
  stageDir: string
  ownersFile: string
  restoredFile: string
  accountsFile: string
  dataPaths: readonly string[]
  freezeUnits: readonly string[]
  allUnits: readonly string[]
  /** restic's host name for the snapshots: the server's domain, whatever machine it runs on. */
  snapshotHost: string
  postsuper: boolean
}

export function hostLayout(config: Config): HostLayout {
  const server = describeServer(config)
  return {
    ...BACKUP,
    accountsFile: ACCOUNTS.accountsFile,
    dataPaths: server.dataPaths,
    freezeUnits: server.dataWriters,
    allUnits: server.units,
    snapshotHost: config.domain,
    postsuper: server.dataPaths.some((p) => p.startsWith(`${POSTFIX_QUEUE_DIR}/`)),
  }
}

/** A fresh repository password (base64url, 256 bits). */
export const newBackupPassword = (): string => randomBytes(32).toString('base64url')

const array = (xs: readonly string[]) => `(${xs.map(q).join(' ')})`

/**
 * The whole script for `bash -s`: the password written to its 0600 file by a heredoc (no argv),
 * the layout, backup.sh, and the entry point.
 */
export function hostScript(mode: 'backup' | 'restore', l: HostLayout, password: string, force = false): string {
  if (!/^[A-Za-z0-9_-]+$/.test(password))
    throw cannotRun('the backup password holds characters other than A-Z a-z 0-9 _ -')
  return [
    'umask 077',
    `install -d -m 755 ${q(join(l.passwordFile, '..'))}`,
    `cat >${q(`${l.passwordFile}.tmp`)} <<'CHATMAIL_BACKUP_PASSWORD'`,
    password,
    'CHATMAIL_BACKUP_PASSWORD',
    `mv -f ${q(`${l.passwordFile}.tmp`)} ${q(l.passwordFile)}`,
    `REPO=${q(l.repository)} PASSWORD_FILE=${q(l.passwordFile)} CACHE_DIR=${q(l.cacheDir)}`,
    `STATE_DIR=${q(l.stateDir)} STAGE_DIR=${q(l.stageDir)} OWNERS_FILE=${q(l.ownersFile)}`,
    `RESTORED_FILE=${q(l.restoredFile)} ACCOUNTS_FILE=${q(l.accountsFile)} SNAPSHOT_HOST=${q(l.snapshotHost)}`,
    `DATA_PATHS=${array(l.dataPaths)}`,
    `FREEZE_UNITS=${array(l.freezeUnits)}`,
    `ALL_UNITS=${array(l.allUnits)}`,
    `KEEP=${array(RETENTION)}`,
    `POSTSUPER=${l.postsuper ? 1 : 0} FORCE=${force ? 1 : 0}`,
    hostShell('backup.sh'),
    `${mode}_main`,
    '',
  ].join('\n')
}

export interface ScriptRun {
  code: number
  results: Map<string, string>
  error?: string
  stderr: string
}

/** Reads the script's "@result KEY VALUE" and "@error MESSAGE" lines. */
export function parseScriptOutput(code: number, stdout: string, stderr: string): ScriptRun {
  const results = new Map<string, string>()
  let error: string | undefined
  for (const line of stdout.split('\n')) {
    const m = /^@(result|error) (\S+)(?: (.*))?$/.exec(line)
    if (!m) continue
    if (m[1] === 'error') error = `${m[2]}${m[3] ? ` ${m[3]}` : ''}`
    else results.set(m[2] as string, m[3] ?? '')
  }
  return { code, results, ...(error ? { error } : {}), stderr }
}

/** The script's exit codes that mean the backup itself is at fault (not the host or the tool). */
const REFUSED = new Set([10, 11, 12])

/** A run that did not end in 0 as the error the user sees: the script's own message, else restic's last line. */
export function scriptError(run: ScriptRun, what: string): ChatmailError {
  const last = run.stderr.trim().split('\n').slice(-3).join('; ')
  const code = REFUSED.has(run.code) ? ExitCode.failed : ExitCode.cannotRun
  return new ChatmailError(`${what}: ${run.error ?? (last || `exit code ${run.code}`)}`, code)
}

interface ResticSummary {
  files_new: number
  files_changed: number
  files_unmodified: number
  data_added: number
  total_files_processed: number
  total_bytes_processed: number
  total_duration: number
  snapshot_id: string
}

export interface BackupResult {
  snapshot: string
  restic: string
  /** The consistent pass (under the freeze) and the live pass before it. */
  final: ResticSummary
  warm: ResticSummary
  freezeMs: number
  /** What the copy to this machine moved. */
  copy: RepoCopy
  localDir: string
  ms: number
}

const summary = (run: ScriptRun, key: string): ResticSummary => {
  const text = run.results.get(key)
  if (!text) throw cannotRun(`the backup script reported no ${key} summary`)
  return JSON.parse(text) as ResticSummary
}

async function runScript(session: SshSession, script: string, what: string): Promise<ScriptRun> {
  const r = await session.exec('bash -s', { stdin: script })
  const run = parseScriptOutput(r.code, r.stdout, r.stderr)
  if (r.code !== 0) throw scriptError(run, what)
  return run
}

/** Where the operator's copy lives by default: beside chatmail.toml, one directory per domain. */
export const defaultBackupDir = (configPath: string, domain: string): string =>
  resolve(configPath, '..', `backup-${domain.replace(/[^A-Za-z0-9.-]/g, '_')}`)

export interface BackupOptions {
  session: SshSession
  config: Config
  password: string
  /** The operator's copy of the repository. */
  localDir: string
  onProgress?: (message: string) => void
}

export async function backupHost(o: BackupOptions): Promise<BackupResult> {
  const t0 = Date.now()
  const progress = o.onProgress ?? (() => {})
  const layout = hostLayout(o.config)
  progress(
    'backing up on the host (restic: a live pass, then a consistent pass with postfix, dovecot and chatmail-accounts stopped)',
  )
  const run = await runScript(o.session, hostScript('backup', layout, o.password), 'the backup failed')
  const final = summary(run, 'final')
  progress(`copying the repository's new files to ${o.localDir}`)
  const copy = await copyRepository(hostRepo(o.session, layout.repository), localRepo(o.localDir))
  return {
    snapshot: final.snapshot_id.slice(0, 8),
    restic: run.results.get('restic') ?? '',
    final,
    warm: summary(run, 'warm'),
    freezeMs: Number(run.results.get('freeze_ms') ?? 0),
    copy,
    localDir: o.localDir,
    ms: Date.now() - t0,
  }
}

export interface RestoreDataResult {
  snapshot: string
  /** The host had been restored from this snapshot already: nothing changed. */
  already: boolean
  copy: RepoCopy
  /** restic's version on the host. */
  restic: string
}

/** The data half of a restore (the host deployed already): copy the repository up, verify, move into place. */
export async function restoreData(o: BackupOptions & { force: boolean }): Promise<RestoreDataResult> {
  const progress = o.onProgress ?? (() => {})
  const layout = hostLayout(o.config)
  const local = localRepo(o.localDir)
  if ((await local.list()).size === 0) {
    throw new ChatmailError(
      `${o.localDir} holds no backup`,
      ExitCode.usage,
      'pass --from DIR, the directory `chatmail backup` wrote',
    )
  }
  progress(`copying the repository from ${o.localDir} to the host`)
  const copy = await copyRepository(local, hostRepo(o.session, layout.repository), false)
  progress('verifying every byte of the backup on the host (restic check --read-data), then restoring')
  const run = await runScript(o.session, hostScript('restore', layout, o.password, o.force), 'the restore was refused')
  const results = run.results
  return {
    snapshot: results.get('snapshot') ?? '',
    already: results.has('already'),
    copy,
    restic: results.get('restic') ?? '',
  }
}
