#!/usr/bin/env node
// Bundles the programs that run on the host (src/remote/) into single files that Debian's nodejs
// (18 on bookworm) runs with no npm install: dist/remote/<name>.js, CommonJS, node: builtins and
// what the bundle inlines (chatmail-accounts: uqr, for the QR code of a self-signed server's login link).
// CommonJS because a host has no package.json saying "type": "module"; dist/remote/package.json
// says so for this repository, where the root package.json says "module".
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, 'dist', 'remote')
const programs = ['chatmail-metadata', 'chatmail-accounts', 'chatmail-filter']

await mkdir(outDir, { recursive: true })
await writeFile(join(outDir, 'package.json'), '{ "type": "commonjs" }\n')
for (const name of programs) {
  const outfile = join(outDir, `${name}.js`)
  await build({
    entryPoints: [join(root, 'src', 'remote', name, 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node' },
    legalComments: 'none',
    logLevel: 'warning',
  })
  await chmod(outfile, 0o755)
  console.error(`build-remote: ${outfile}`)
}
