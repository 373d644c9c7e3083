#!/usr/bin/env node
// Runs the CLI for development: the BUILT dist/ (as bin/run.js does) with oclif's development mode
// (stack traces on errors). Only after checking that no file of src/ (nor the build scripts) is newer
// than the build: the deploy pairs dist/ (the facts parser, the host programs in dist/remote/) with
// this tree's templates/ (the host shell), so a stale dist/ misreads the facts of a current tree and
// rewrites every file. A stale build stops the run with one line; `npm run build` mends it.
// oclif's own TypeScript path mapping is switched off, so dist/ is the one source of code.
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Newest modification time under `path` (a file or a directory tree), and which file has it. */
function newest(path) {
  const st = statSync(path, { throwIfNoEntry: false })
  if (!st) return { time: 0, path }
  if (!st.isDirectory()) return { time: st.mtimeMs, path }
  let best = { time: 0, path }
  for (const entry of readdirSync(path)) {
    const n = newest(join(path, entry))
    if (n.time > best.time) best = n
  }
  return best
}

/** When the build began: dist/cli.js is its first output (scripts/build.mjs empties dist/ first). */
const built = statSync(join(root, 'dist', 'cli.js'), { throwIfNoEntry: false })?.mtimeMs
const sources = ['src', 'package.json', 'scripts/build.mjs', 'scripts/build-remote.mjs'].map((p) =>
  newest(join(root, p)),
)
const latest = sources.reduce((a, b) => (b.time > a.time ? b : a))
if (built === undefined || latest.time > built) {
  const why = built === undefined ? 'there is no dist/cli.js' : `${relative(root, latest.path)} is newer than dist/`
  process.stderr.write(`bin/dev.js: ${why}: run \`npm run build\` first (dev runs use the built dist/)\n`)
  process.exit(3)
}

globalThis.oclif = { ...globalThis.oclif, enableAutoTranspile: false }
const { execute } = await import('../dist/cli.js')
await execute({ development: true, dir: import.meta.url })
