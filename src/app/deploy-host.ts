/**
 * `chatmail deploy host` as a library: config → stack → SSH → facts → plan → apply → doctor.
 * The application module of the command (src/app/): it composes the deploy (src/deploy/) and then
 * the doctor (src/doctor/), which do not import each other. The command only parses flags and
 * renders what this returns (deploy-render.ts).
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { LoadedConfig } from '../config/load.js'
import { type DeployResult, deploy } from '../deploy/engine.js'
import type { Plan } from '../deploy/plan.js'
import type { DeploySpec } from '../deploy/resources.js'
import { buildStack, type HostInfo } from '../deploy/service.js'
import { doctorAddress } from '../deploy/services/common.js'
import { stackFor } from '../deploy/stacks/index.js'
import type { DoctorReport } from '../doctor/model.js'
import { cannotRun, usageError } from '../lib/errors.js'
import { PATHS } from '../server/paths.js'
import { describeTarget, type ResolvedTarget, resolveTarget, SshSession, type SshTarget } from '../ssh/index.js'

/** The package root (dist/ and templates/ live there), found from this module's location. */
export async function packageRoot(): Promise<string> {
  let dir = new URL('.', import.meta.url)
  for (let i = 0; i < 5; i++) {
    const ok = await readFile(new URL('package.json', dir), 'utf8').then(
      (t) => (JSON.parse(t) as { name?: string }).name === 'chatmail',
      () => false,
    )
    if (ok) return fileURLToPath(dir)
    dir = new URL('..', dir)
  }
  throw cannotRun('cannot find the chatmail package root (templates/ and dist/)')
}

export interface DeployHostOptions extends DeployTargetOptions {
  loaded: LoadedConfig
  /** An open session to the host (the command connects first, so a passphrase prompt comes before the progress display). */
  session?: SshSession
  skipDnsCheck: boolean
  dryRun: boolean
  irohRelaySource?: string
  irohRelaySha256?: string
  confirm?: (plan: Plan) => boolean | Promise<boolean>
  onProgress?: (message: string) => void
  /** Run the doctor after a successful apply (default true). */
  doctor: boolean
  doctorTimeoutMs?: number
}

export interface DeployHostResult {
  target: Required<SshTarget>
  result: DeployResult
  doctor?: DoctorReport
  /** The doctor's login. */
  doctorUser: string
  /**
   * A password made for the doctor account because the config had none, now in use on the host:
   * the caller keeps it in the config (`saveDoctorAccount`). Never set on a dry run.
   */
  newDoctorPassword?: string
}

export interface DeployTargetOptions {
  /** user@host[:port] or an alias from the SSH config (default: deploy.destination, else root@DOMAIN). */
  destination?: string
  identity?: string
  knownHosts?: string
  /** -F: the SSH config file to read instead of ~/.ssh/config. */
  sshConfig?: string
  acceptNewHostKey: boolean
}

/** The SSH flags of the commands that reach the server, as DeployTargetOptions. */
export interface SshFlagValues {
  identity?: string | undefined
  'known-hosts'?: string | undefined
  'ssh-config'?: string | undefined
  'accept-new-host-key'?: boolean | undefined
}

export const deployTargetOptions = (destination: string | undefined, f: SshFlagValues): DeployTargetOptions => ({
  ...(destination ? { destination } : {}),
  ...(f.identity ? { identity: f.identity } : {}),
  ...(f['known-hosts'] ? { knownHosts: f['known-hosts'] } : {}),
  ...(f['ssh-config'] ? { sshConfig: f['ssh-config'] } : {}),
  acceptNewHostKey: f['accept-new-host-key'] ?? false,
})

/** Where `deploy host` connects to, resolved as ssh would (config aliases, keys, jump hosts). */
export function resolveDeployTarget(loaded: LoadedConfig, o: DeployTargetOptions): Promise<ResolvedTarget> {
  const destination = o.destination ?? loaded.config.deploy.destination ?? `root@${loaded.config.domain}`
  return resolveTarget(destination, {
    ...(o.identity ? { identity: o.identity } : {}),
    ...(o.knownHosts ? { knownHosts: o.knownHosts } : {}),
    ...(o.sshConfig ? { sshConfig: o.sshConfig } : {}),
    acceptNewHostKey: o.acceptNewHostKey,
  })
}

/**
 * The stack of the config's profile, as the engine builds it once it knows the host (its Debian
 * release and package versions). Checks what can be checked before connecting.
 */
export async function stackBuilder(
  o: DeployHostOptions,
  doctorPassword: string,
): Promise<(host: HostInfo) => Promise<DeploySpec>> {
  const config = o.loaded.config
  const stack = stackFor(config.profile)
  const root = await packageRoot()
  const source = o.irohRelaySource ?? config.deploy.irohRelaySource
  const sha = o.irohRelaySha256 ?? config.deploy.irohRelaySha256
  if (sha !== undefined && !/^[0-9a-f]{64}$/.test(sha))
    throw usageError(`iroh-relay sha256 ${sha} is not 64 hex digits`)
  return (host) =>
    buildStack(stack, {
      config,
      host,
      templatesDir: `${root}/templates`,
      distDir: `${root}/dist`,
      doctorPassword,
      irohRelay: { ...(source ? { source } : {}), ...(sha ? { sha256: sha } : {}) },
    })
}

export async function deployHost(o: DeployHostOptions): Promise<DeployHostResult> {
  const progress = o.onProgress ?? (() => {})
  const doctorUser = doctorAddress(o.loaded.config)
  const password = o.loaded.config.doctor.password ?? randomBytes(18).toString('base64url')
  const made = !o.loaded.config.doctor.password && !o.dryRun
  const account = { doctorUser, ...(made ? { newDoctorPassword: password } : {}) }
  const spec = await stackBuilder(o, password)
  let session = o.session
  if (!session) {
    const resolved = await resolveDeployTarget(o.loaded, o)
    progress(`connecting to ${describeTarget(resolved)}`)
    session = await SshSession.connectTo(resolved)
  }
  const target = session.target
  try {
    const result = await deploy({
      session,
      spec,
      domain: o.loaded.config.domain,
      skipDnsCheck: o.skipDnsCheck,
      dryRun: o.dryRun,
      ...(o.confirm ? { confirm: o.confirm } : {}),
      onProgress: progress,
    })
    const applied = !o.dryRun && (result.applied !== undefined || result.plan.changed === 0)
    if (!o.doctor || !applied) return { target, result, ...account }
    progress('running the doctor against the deployed host')
    const ca = await hostCertificate(session, o.loaded)
    const { doctorOptions, runDoctor } = await import('../doctor/index.js')
    const c = o.loaded.config
    const doctor = await runDoctor(
      doctorOptions(
        {
          domain: c.domain,
          imapHost: target.host,
          user: doctorAddress(c),
          password,
          ca,
          insecure: false,
          timeoutMs: o.doctorTimeoutMs ?? 10_000,
        },
        c,
      ),
    )
    return { target, result, doctor, ...account }
  } finally {
    session.close()
  }
}

/** Self-signed servers: the doctor trusts the certificate the deploy itself made, read over SSH. */
async function hostCertificate(session: SshSession, loaded: LoadedConfig): Promise<string | undefined> {
  if (loaded.config.tls.mode !== 'self-signed') return undefined
  const r = await session.exec(`cat ${PATHS.tlsCert}`)
  return r.code === 0 && r.stdout.includes('BEGIN CERTIFICATE') ? r.stdout : undefined
}
