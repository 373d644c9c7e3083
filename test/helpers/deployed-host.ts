/**
 * A test host with the whole chatmail stack deployed by the built CLI (`init` + `deploy host
 * --yes`), for tests that need a working server rather than the deploy itself.
 *
 *   const d = await startDeployedHost({ name: 'th-dc-80', index: 80 })   // IP-only, self-signed
 *   ... d.host.host, d.dir (holds chatmail.toml), d.redeploy() ...
 *   await d.stop()
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { type CliRun, runCli } from './cli.js'
import { type StandInMirror, serveStandInMirror } from './standin-tarball.js'
import { deployHostArgs, startTestHost, stopTestHost, type TestHost, type TestHostOptions } from './testhost.js'

export interface DeployedHost {
  host: TestHost
  /** The working directory holding chatmail.toml (mode 0600). */
  dir: string
  /** The doctor account the deploy made (address and password from chatmail.toml). */
  doctor: { user: string; password: string }
  /** `chatmail deploy host --yes --json` again; resolves with the run. */
  redeploy(...extra: string[]): Promise<CliRun>
  /** The built CLI in the working directory. */
  cli(args: string[], timeoutMs?: number): Promise<CliRun>
  stop(): Promise<void>
}

export interface DeployedHostOptions extends TestHostOptions {
  /** The server's name for `chatmail init` (default: the host's IP address, an IP-only server). */
  domain?: string
  /** More `chatmail init` arguments, e.g. ['--tls', 'self-signed']. */
  initArgs?: string[]
  /** More `deploy host` arguments for every deploy, e.g. ['--skip-dns-check', '--no-doctor']. */
  deployArgs?: string[]
  /** How long a deploy may take (default 10 min; apt on a busy machine takes most of it). */
  deployTimeoutMs?: number
}

export async function startDeployedHost(opts: DeployedHostOptions): Promise<DeployedHost> {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-deployed-'))
  let mirror: StandInMirror | undefined
  const stop = async () => {
    mirror?.close()
    await stopTestHost(opts).catch(() => {})
  }
  try {
    const host = await startTestHost(opts)
    mirror = await serveStandInMirror(dir, host.runnerIp)
    const m = mirror
    // A fresh deploy took over 600 s on the shared 2-core machine under load.
    const cli = (args: string[], timeoutMs = 840_000) => runCli(args, { cwd: dir, timeoutMs })
    const deploy = (...extra: string[]) =>
      cli(
        deployHostArgs(host, `root@${host.host}`, m, '--yes', '--json', ...(opts.deployArgs ?? []), ...extra),
        opts.deployTimeoutMs,
      )
    const init = await cli(['init', opts.domain ?? host.host, ...(opts.initArgs ?? [])])
    if (init.code !== 0) throw new Error(`chatmail init failed: ${init.stderr}`)
    const first = await deploy()
    if (first.code !== 0) throw new Error(`chatmail deploy host failed (${first.code}): ${first.stderr.slice(-3000)}`)
    const toml = parse(readFileSync(join(dir, 'chatmail.toml'), 'utf8')) as {
      doctor?: { user?: string; password?: string }
    }
    const doctor = {
      user: toml.doctor?.user ?? (opts.domain ? `doctor@${opts.domain}` : `doctor@[${host.host}]`),
      password: toml.doctor?.password ?? '',
    }
    if (!doctor.password) throw new Error('the deploy kept no doctor password in chatmail.toml')
    return { host, dir, doctor, redeploy: deploy, cli, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
