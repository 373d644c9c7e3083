/**
 * Starts and stops the disposable systemd test host (scripts/testhost.sh) from vitest.
 *
 *   const reason = testHostSkipReason()
 *   describe.skipIf(reason)(`... ${reason ? `(skipped: ${reason})` : ''}`, () => {
 *     beforeAll(async () => { host = await startTestHost({ name: 'th-x', index: 5 }) })
 *     afterAll(async () => { await stopTestHost({ name: 'th-x', index: 5 }) })
 *   })
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const TESTHOST_SCRIPT = fileURLToPath(new URL('../../scripts/testhost.sh', import.meta.url))

export interface TestHost {
  name: string
  host: string
  port: number
  user: string
  keyFile: string
  knownHostsFile: string
  domain: string
  runnerIp: string
  pid: number
  /** The environment the script was run with (name, index), for stop. */
  env: Record<string, string>
}

export interface TestHostOptions {
  /** TESTHOST_NAME: one name per test file that runs in parallel with others. */
  name?: string
  /** TESTHOST_INDEX: the guest is 10.213.INDEX.2. */
  index?: number
  /** TESTHOST_RUNNER_PORTS, e.g. '8000:8999 14000'. */
  runnerPorts?: string
  /** TESTHOST_RUNNER_UDP_PORTS, e.g. '53' (a DNS server the test runs on the runner). */
  runnerUdpPorts?: string
  /** TESTHOST_DOMAIN: the guest's own name in its /etc/hosts (default NAME.test). */
  domain?: string
  cacheDir?: string
  /** TESTHOST_SUITE: the Debian release of the guest (default bookworm). */
  suite?: DebianSuite
  /** TESTHOST_KEEP=1: `up` after a `stop` (without purge) boots the previous run's system again (a reboot). */
  keep?: boolean
}

/** The Debian releases the deploy supports, by suite and by major version. */
export const DEBIAN_SUITES = { bookworm: '12', trixie: '13' } as const
export type DebianSuite = keyof typeof DEBIAN_SUITES

/** `12` / `13` / `bookworm` / `trixie` → the suite; undefined for anything else. */
export function debianSuite(release: string): DebianSuite | undefined {
  if (release in DEBIAN_SUITES) return release as DebianSuite
  return (Object.keys(DEBIAN_SUITES) as DebianSuite[]).find((s) => DEBIAN_SUITES[s] === release)
}

/** The releases an e2e file runs on: `CHATMAIL_E2E_DEBIAN` (e.g. `13` or `12,13`), both by default. */
export function e2eSuites(value = process.env.CHATMAIL_E2E_DEBIAN ?? '12,13'): DebianSuite[] {
  return value.split(',').map((r) => {
    const suite = debianSuite(r.trim())
    if (!suite) throw new Error(`CHATMAIL_E2E_DEBIAN: ${r} is not 12 or 13`)
    return suite
  })
}

/**
 * Why an e2e suite for one Debian release does not run here (no test host, or the release left out
 * of CHATMAIL_E2E_DEBIAN), or undefined when it runs. Suites that cover both releases live in a
 * `*.suite.ts` module with one `*-12.test.ts` and one `*-13.test.ts` file calling it, so the two
 * releases run side by side on separate vitest workers.
 */
export function releaseSkipReason(suite: DebianSuite): string | undefined {
  return (
    testHostSkipReason() ??
    (e2eSuites().includes(suite) ? undefined : `CHATMAIL_E2E_DEBIAN leaves out Debian ${DEBIAN_SUITES[suite]}`)
  )
}

const hasCommand = (cmd: string) =>
  ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(`${d}/${cmd}`))

/** Why the live tests cannot run here, or undefined when they can. */
export function testHostSkipReason(): string | undefined {
  if (process.env.CHATMAIL_E2E === '0') return 'CHATMAIL_E2E=0'
  if (process.platform !== 'linux') return 'the test host needs Linux'
  if (process.getuid?.() !== 0) return 'the test host needs root (systemd-nspawn, network namespaces, iptables)'
  const missing = ['systemd-nspawn', 'mmdebstrap', 'iptables', 'ssh'].filter((c) => !hasCommand(c))
  if (missing.length > 0) return `missing ${missing.join(', ')} (run: bash scripts/test-deps.sh)`
  return undefined
}

/** `KEY=value` lines (values optionally single-quoted) → record. */
export function parseEnvOutput(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim())
    if (!m) continue
    const raw = m[2]!
    env[m[1]!] = raw.startsWith("'") && raw.endsWith("'") ? raw.slice(1, -1) : raw
  }
  return env
}

function scriptEnv(opts: TestHostOptions): Record<string, string> {
  const env: Record<string, string> = {}
  if (opts.name) env.TESTHOST_NAME = opts.name
  if (opts.index !== undefined) env.TESTHOST_INDEX = String(opts.index)
  if (opts.runnerPorts) env.TESTHOST_RUNNER_PORTS = opts.runnerPorts
  if (opts.runnerUdpPorts) env.TESTHOST_RUNNER_UDP_PORTS = opts.runnerUdpPorts
  if (opts.domain) env.TESTHOST_DOMAIN = opts.domain
  if (opts.suite) env.TESTHOST_SUITE = opts.suite
  if (opts.keep) env.TESTHOST_KEEP = '1'
  return env
}

export async function startTestHost(opts: TestHostOptions = {}): Promise<TestHost> {
  const env = scriptEnv(opts)
  const args = [TESTHOST_SCRIPT, 'up', ...(opts.cacheDir ? [opts.cacheDir] : [])]
  let stdout: string
  try {
    ;({ stdout } = await run('bash', args, { env: { ...process.env, ...env }, timeout: 300_000 }))
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`testhost.sh up failed: ${e.stderr?.trim().split('\n').slice(-8).join('\n') ?? e.message}`)
  }
  const v = parseEnvOutput(stdout)
  const need = (k: string) => {
    const value = v[k]
    if (!value) throw new Error(`testhost.sh up printed no ${k}:\n${stdout}`)
    return value
  }
  return {
    name: need('TESTHOST_NAME'),
    host: need('TESTHOST_HOST'),
    port: Number(need('TESTHOST_PORT')),
    user: need('TESTHOST_USER'),
    keyFile: need('TESTHOST_KEY'),
    knownHostsFile: need('TESTHOST_KNOWN_HOSTS'),
    domain: need('TESTHOST_DOMAIN'),
    runnerIp: need('TESTHOST_RUNNER_IP'),
    pid: Number(need('TESTHOST_PID')),
    env,
  }
}

/** Halts the guest and removes its network, firewall rules and overlay (and its keys with purge). */
/** Takes the same options as start, so afterAll can clean up even when start failed half-way. */
export async function stopTestHost(opts: TestHostOptions, stop: { purge?: boolean } = { purge: true }): Promise<void> {
  await run('bash', [TESTHOST_SCRIPT, 'stop', ...(stop.purge ? ['--purge'] : [])], {
    env: { ...process.env, ...scriptEnv(opts) },
    timeout: 60_000,
  })
}

/** Runs a command in the guest through the script's ssh (for assertions, not for the code under test). */
export async function guestShell(host: TestHost, command: string): Promise<string> {
  const { stdout } = await run('bash', [TESTHOST_SCRIPT, 'ssh', command], { env: { ...process.env, ...host.env } })
  return stdout
}

/** `chatmail deploy host` arguments for a test host: its key, known_hosts and a relay mirror. */
/** The config and SSH arguments every command run against a test host takes: chatmail.toml, its key and known_hosts. */
export const sshArgs = (host: TestHost): string[] => [
  '-c',
  'chatmail.toml',
  '-i',
  host.keyFile,
  '--known-hosts',
  host.knownHostsFile,
]

export function deployHostArgs(
  host: TestHost,
  target: string,
  relay: { source: string; sha256: string },
  ...extra: string[]
): string[] {
  return [
    'deploy',
    'host',
    target,
    ...sshArgs(host),
    '--iroh-relay-source',
    relay.source,
    '--iroh-relay-sha256',
    relay.sha256,
    ...extra,
  ]
}
