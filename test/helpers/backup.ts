/**
 * Backup tests: a manifest of files (path, size, owner, mode, sha256), made by the same shell
 * command on loopback and in a test host, so "before" and "after" compare line by line.
 */
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { type HostLayout, hostScript, parseScriptOutput, type ScriptRun } from '../../src/app/backup.js'

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** Shell: one line per regular file under the paths that exist: "path size user:group mode sha256", sorted. */
export function manifestCommand(paths: readonly string[]): string {
  return [
    `for p in ${paths.map(q).join(' ')}; do`,
    '  [ -e "$p" ] || continue',
    `  find "$p" -type f -printf '%p %s %u:%g %m ' -exec sh -c 'sha256sum < "$1" | cut -d" " -f1' - {} \\;`,
    'done | LC_ALL=C sort',
  ].join('\n')
}

export const parseManifest = (text: string): string[] => text.split('\n').filter(Boolean)

/** The manifest on this machine (as root: every file is readable). */
export const localManifest = (paths: readonly string[]): string[] =>
  parseManifest(execFileSync('bash', ['-c', manifestCommand(paths)], { encoding: 'utf8' }))

/**
 * The host script's layout under `root` on this machine: server data in root/host/{accounts,
 * users, mail, queue/deferred, dkim, absent}, the repository and state in root/state, no units.
 */
export function loopbackLayout(root: string): { layout: HostLayout; data: string[] } {
  const d = (p: string) => join(root, 'host', p)
  const data = [d('accounts'), d('users'), d('mail'), d('queue/deferred'), d('dkim'), d('absent')]
  const layout: HostLayout = {
    repository: join(root, 'state/repo'),
    passwordFile: join(root, 'etc/backup-password'),
    cacheDir: join(root, 'cache'),
    stateDir: join(root, 'state'),
    stageDir: join(root, 'state/stage'),
    ownersFile: join(root, 'state/owners'),
    restoredFile: join(root, 'state/restored'),
    accountsFile: join(d('accounts'), 'accounts'),
    dataPaths: [...data, join(root, 'state/owners')],
    freezeUnits: [],
    allUnits: [],
    snapshotHost: 'chat.example.org',
    postsuper: false,
  }
  return { layout, data }
}

/** Runs the host script by `bash -s` here, asynchronously (restic runs for minutes; a blocked worker misses vitest's calls). */
export const runHostScript = (mode: 'backup' | 'restore', layout: HostLayout, password: string, force = false) =>
  new Promise<ScriptRun>((resolve) => {
    const child = spawn('bash', ['-s'])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d
    })
    child.on('close', (code) => resolve(parseScriptOutput(code ?? -1, stdout, stderr)))
    child.stdin.end(hostScript(mode, layout, password, force))
  })
