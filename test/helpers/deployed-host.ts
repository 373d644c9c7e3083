/**
 * A test host with the whole chatmail stack deployed by the built CLI (`init` + `deploy host
 * --yes`), for tests that need a working server rather than the deploy itself.
 *
 *   const d = await startDeployedHost({ name: 'th-dc-80', index: 80 })   // IP-only, self-signed
 *   ... d.host.host, d.dir (holds chatmail.toml), d.redeploy() ...
 *   await d.stop()
 *
 * `startConfiguredHost` stops before the first deploy (the host, chatmail.toml, the relay mirror),
 * for tests that deploy themselves. With `acme`, a pebble on the runner issues the certificate.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { type CliRun, runCli } from './cli.js'
import { type Pebble, startPebble } from './pebble.js'
import { type StandInMirror, serveStandInMirror } from './standin-tarball.js'
import {
  deployHostArgs,
  guestShell,
  startTestHost,
  stopTestHost,
  type TestHost,
  type TestHostOptions,
} from './testhost.js'

export interface ConfiguredHost {
  /** The running guest; a test that reboots it (stop + start with keep) puts the new one here. */
  host: TestHost
  /** The working directory holding chatmail.toml (mode 0600). */
  dir: string
  mirror: StandInMirror
  /** With `domain`: /etc/hosts plus the domain (and mta-sts.) at the host, for CLI runs that must resolve it. */
  hostsFile?: string
  /** With `acme`: the pebble that issues the certificates, and the root they chain to (PEM, and a file). */
  acme?: { pebble: Pebble; rootPem: string; rootFile: string }
  /** `chatmail deploy host --yes --json` (and the options' deployArgs); resolves with the run. */
  deploy(...extra: string[]): Promise<CliRun>
  /** The built CLI in the working directory (with `acme`, where the domain resolves to the host). */
  cli(args: string[], timeoutMs?: number, env?: Record<string, string>): Promise<CliRun>
  stop(): Promise<void>
}

export interface DeployedHost extends ConfiguredHost {
  /** The doctor account the deploy made (address and password from chatmail.toml). */
  doctor: { user: string; password: string }
  /** The first deploy (it exited 0), for tests that judge what it did. */
  first: CliRun
  /** `deploy` again. */
  redeploy(...extra: string[]): Promise<CliRun>
}

export interface DeployedHostOptions extends TestHostOptions {
  /** The server's name for `chatmail init` (default: the host's IP address, an IP-only server). */
  domain?: string
  /**
   * Needs `domain`: `init --tls acme` with a pebble started on the runner as the ACME directory
   * (HTTP-01 against the guest's port 80); the guest trusts pebble's API certificate as a real host
   * trusts Let's Encrypt's; the CLI runs in a private mount namespace whose /etc/hosts maps the
   * domain to the guest, and deploys trust pebble's root (NODE_EXTRA_CA_CERTS) and skip the DNS check.
   */
  acme?: boolean
  /** More `chatmail init` arguments, e.g. ['--tls', 'self-signed']. */
  initArgs?: string[]
  /** More `deploy host` arguments for every deploy, e.g. ['--skip-dns-check', '--no-doctor']. */
  deployArgs?: string[]
  /** How long a deploy may take (default 14 min; apt on a busy machine takes most of it). */
  deployTimeoutMs?: number
}

/** `unshare` arguments that run a command with `hostsFile` as /etc/hosts (root only). */
export const withHosts = (hostsFile: string) => [
  'unshare',
  '--mount',
  '--propagation',
  'private',
  '--',
  'sh',
  '-c',
  'mount --bind "$0" /etc/hosts && exec "$@"',
  hostsFile,
]

export async function startConfiguredHost(opts: DeployedHostOptions): Promise<ConfiguredHost> {
  if (opts.acme && !opts.domain) throw new Error('startConfiguredHost: acme needs a domain')
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-deployed-'))
  let mirror: StandInMirror | undefined
  let pebble: Pebble | undefined
  const stop = async () => {
    mirror?.close()
    await pebble?.stop().catch(() => {})
    await stopTestHost(opts).catch(() => {})
  }
  try {
    const host = await startTestHost(opts)
    mirror = await serveStandInMirror(dir, host.runnerIp)
    let hostsFile: string | undefined
    if (opts.domain) {
      hostsFile = join(dir, 'hosts')
      const names = `${opts.domain} mta-sts.${opts.domain}`
      writeFileSync(hostsFile, `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n${host.host} ${names}\n`)
    }
    let acme: ConfiguredHost['acme']
    if (opts.acme) {
      pebble = await startPebble({ listenIp: host.runnerIp, targetIp: host.host })
      const rootPem = await pebble.rootCaPem()
      const rootFile = join(dir, 'pebble-root.pem')
      writeFileSync(rootFile, rootPem)
      acme = { pebble, rootPem, rootFile }
      await guestShell(
        host,
        `cat >/usr/local/share/ca-certificates/chatmail-test-pebble.crt <<'EOF'\n${pebble.tlsCaPem.trim()}\nEOF\nupdate-ca-certificates >/dev/null`,
      )
    }
    const wrap = acme && hostsFile ? withHosts(hostsFile) : undefined
    // A fresh deploy took over 600 s on the shared 2-core machine under load.
    const cli = (args: string[], timeoutMs = 840_000, env: Record<string, string> = {}) =>
      runCli(args, { cwd: dir, timeoutMs, env, ...(wrap ? { wrap } : {}) })
    const m = mirror
    const c: ConfiguredHost = {
      host,
      dir,
      mirror: m,
      ...(hostsFile ? { hostsFile } : {}),
      ...(acme ? { acme } : {}),
      cli,
      // c.host, not host: a rebooted guest is deployed to as the test left it in c.host.
      deploy: (...extra) =>
        cli(
          deployHostArgs(
            c.host,
            // With acme, by name, as an operator deploys (the name resolves in the CLI's namespace).
            `root@${acme ? opts.domain : c.host.host}`,
            m,
            ...(acme ? ['--skip-dns-check'] : []),
            '--yes',
            '--json',
            ...(opts.deployArgs ?? []),
            ...extra,
          ),
          opts.deployTimeoutMs,
          acme ? { NODE_EXTRA_CA_CERTS: acme.rootFile } : {},
        ),
      stop,
    }
    const tls = acme ? ['--tls', 'acme', '--acme-email', `admin@${opts.domain}`] : []
    const init = await cli(['init', opts.domain ?? host.host, ...tls, ...(opts.initArgs ?? [])])
    if (init.code !== 0) throw new Error(`chatmail init failed: ${init.stderr}`)
    if (acme) {
      const path = join(dir, 'chatmail.toml')
      const line = /^(# )?acme_directory = .*$/m
      const toml = readFileSync(path, 'utf8')
      if (!line.test(toml)) throw new Error('chatmail init wrote no acme_directory line')
      writeFileSync(path, toml.replace(line, `acme_directory = "${acme.pebble.directoryUrl}"`))
    }
    return c
  } catch (err) {
    await stop()
    throw err
  }
}

export async function startDeployedHost(opts: DeployedHostOptions): Promise<DeployedHost> {
  const c = await startConfiguredHost(opts)
  try {
    const first = await c.deploy()
    if (first.code !== 0) {
      const pebble = c.acme ? `\n--- pebble:\n${c.acme.pebble.log().slice(-3000)}` : ''
      const out = `${first.stderr.slice(-3000)}\n${first.stdout.slice(0, 4000)}`
      throw new Error(`chatmail deploy host failed (${first.code}): ${out}${pebble}`)
    }
    const toml = parse(readFileSync(join(c.dir, 'chatmail.toml'), 'utf8')) as {
      doctor?: { user?: string; password?: string }
    }
    const doctor = {
      user: toml.doctor?.user ?? (opts.domain ? `doctor@${opts.domain}` : `doctor@[${c.host.host}]`),
      password: toml.doctor?.password ?? '',
    }
    if (!doctor.password) throw new Error('the deploy kept no doctor password in chatmail.toml')
    return Object.assign(c, { doctor, first, redeploy: c.deploy })
  } catch (err) {
    await c.stop()
    throw err
  }
}
