/**
 * Backup tests: a manifest of files (path, size, owner, mode, sha256), made by the same shell
 * command on loopback and in a test host, so "before" and "after" compare line by line.
 */
import { execFileSync } from 'node:child_process'

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
