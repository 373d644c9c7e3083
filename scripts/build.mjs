// Builds the CLI into dist/: the entry (dist/cli.js, oclif's execute) and one ESM file per command
// (dist/commands/, oclif "pattern" discovery through oclif.manifest.json), with the code they share
// in dist/chunks/: a run loads only its own command's code. Heavy libraries used by only some
// commands stay external and are imported lazily by those commands.

import { readdir, rm } from 'node:fs/promises'
import { build } from 'esbuild'

const commands = (await readdir('src/commands', { recursive: true }))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => [`commands/${f.replace(/\.ts$/, '')}`, `src/commands/${f}`])

await rm('dist', { recursive: true, force: true })
await build({
  entryPoints: { cli: 'src/cli.ts', ...Object.fromEntries(commands) },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
  chunkNames: 'chunks/[name]-[hash]',
  // Loaded from node_modules when a command needs them (ssh2 has optional native parts).
  external: ['ssh2', 'cpu-features', 'imapflow', 'openpgp', 'nodemailer', 'listr2', 'typescript', 'ts-node', 'tsx'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
})
