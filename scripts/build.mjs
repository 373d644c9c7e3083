// Builds the CLI into dist/: one ESM entry with every command (oclif "explicit" discovery), so
// start-up reads a handful of files instead of scanning a tree. Heavy libraries used by only
// some commands stay external and are imported lazily by those commands.

import { rm } from 'node:fs/promises'
import { build } from 'esbuild'

await rm('dist', { recursive: true, force: true })
await build({
  entryPoints: { cli: 'src/cli.ts' },
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
