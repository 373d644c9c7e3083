/**
 * Shell that runs on the host lives in `templates/shell/*.sh` (linted by shellcheck in
 * `npm run lint`); the deploy's facts and apply scripts and the doctor's host probe load it from here.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** templates/shell/, found upwards from this module (src/lib/ or dist/chunks/). */
function shellDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'templates', 'shell')
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new Error('cannot find templates/shell/ in the chatmail package')
}

/** The text of `templates/shell/<name>`, without its leading comment block. */
export function hostShell(name: string): string {
  const text = readFileSync(join(shellDir(), name), 'utf8')
  return text.replace(/^(#.*\n)+/, '')
}
