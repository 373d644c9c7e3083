/**
 * Packages the iroh-relay STAND-IN (test/stand-in-relay/iroh-relay-standin.mjs) the way the real
 * release is shipped: a .tar.gz named like iroh-relay-v0.35.0-<arch>-unknown-linux-musl.tar.gz
 * whose member `iroh-relay` is an executable. Here the member is a shell wrapper that runs the
 * stand-in with the host's Debian nodejs. It exists because the real binary cannot be downloaded
 * in the test environment; everything built here says STAND-IN.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const STANDIN = fileURLToPath(new URL('../stand-in-relay/iroh-relay-standin.mjs', import.meta.url))

export interface StandInTarball {
  /** Directory holding the tarballs for both architectures (serve it as the release directory). */
  dir: string
  /** sha256 of the extracted `iroh-relay` member. */
  sha256: string
}

export function buildStandInTarball(workDir: string): StandInTarball {
  const js = readFileSync(STANDIN, 'utf8')
  if (js.includes('\n__STANDIN_END__\n')) throw new Error('the stand-in contains the wrapper marker')
  const wrapper = [
    '#!/bin/sh',
    '# iroh-relay STAND-IN: a test double for iroh-relay v0.35.0 (chatmail tests), NOT the real relay.',
    'export IROH_RELAY_STANDIN_MAIN=1',
    'exec node --input-type=module -e "$(sed -n \'/^__STANDIN_BEGIN__$/,/^__STANDIN_END__$/p\' "$0" | sed \'1d;$d\')" iroh-relay "$@"',
    '__STANDIN_BEGIN__',
    js.trimEnd(),
    '__STANDIN_END__',
    '',
  ].join('\n')
  const member = join(workDir, 'member')
  mkdirSync(member, { recursive: true })
  writeFileSync(join(member, 'iroh-relay'), wrapper, { mode: 0o755 })
  const out = join(workDir, 'release')
  mkdirSync(out, { recursive: true })
  for (const arch of ['x86_64', 'aarch64']) {
    const name = `iroh-relay-v0.35.0-${arch}-unknown-linux-musl.tar.gz`
    execFileSync('tar', ['-czf', join(out, name), '-C', member, './iroh-relay'])
  }
  return { dir: out, sha256: createHash('sha256').update(wrapper).digest('hex') }
}

export interface StandInMirror {
  /** `--iroh-relay-source`: the mirror directory URL. */
  source: string
  /** `--iroh-relay-sha256`. */
  sha256: string
  close(): void
}

/**
 * Serves the stand-in tarballs like a release mirror, on the runner's side of a test host's veth
 * (a port from the 8000-8999 range testhost.sh lets the guest reach; `port` picks one).
 */
export async function serveStandInMirror(workDir: string, listenIp: string, port?: number): Promise<StandInMirror> {
  const tarball = buildStandInTarball(workDir)
  const server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\//, '')
    if (!/^[\w.-]+\.tar\.gz$/.test(name)) return res.writeHead(404).end()
    try {
      res.end(readFileSync(join(tarball.dir, name)))
    } catch {
      res.writeHead(404).end()
    }
  })
  const p = port ?? 8000 + Math.floor(Math.random() * 900)
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(p, listenIp, ok)
  })
  return { source: `http://${listenIp}:${p}/`, sha256: tarball.sha256, close: () => server.close() }
}
