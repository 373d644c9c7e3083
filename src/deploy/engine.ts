import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { ChatmailError, cannotRun, ExitCode } from '../lib/errors.js'
import { APPLY_LOCK, AUDIT_LOG, uploadPath } from '../server/paths.js'
import { collect, type SshSession } from '../ssh/index.js'
import { type ApplyOutcome, applyScript, parseApplyOutput } from './apply.js'
import { type Facts, factsScript, hostFactsScript, parseFacts, resourceFactsScript } from './facts.js'
import { HostLock } from './lock.js'
import { computePlan, type Plan } from './plan.js'
import { type PreflightProblem, preflightDns, preflightFacts, type Resolver } from './preflight.js'
import { checkSpec, type DeploySpec } from './resources.js'
import { type HostInfo, hostInfo } from './service.js'

export interface DeployOptions {
  session: SshSession
  /**
   * What to deploy: a spec, or a stack built from the host's facts (its Debian release and
   * package versions), which costs one more round trip for the facts of its resources.
   */
  spec: DeploySpec | ((host: HostInfo) => Promise<DeploySpec>)
  /** For the DNS preflight and the audit line. */
  domain?: string
  skipDnsCheck?: boolean
  resolver?: Resolver
  minFreeMb?: number
  dryRun?: boolean
  /** Called with the plan before anything changes; return false to stop (e.g. the user said no). */
  confirm?: (plan: Plan) => boolean | Promise<boolean>
  onProgress?: (message: string) => void
}

export interface DeployResult {
  facts: Facts
  plan: Plan
  applied?: ApplyOutcome
  /** Sequential SSH round trips of this run. */
  roundTrips: number
  durationMs: number
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Uploads local binaries that the plan installs (one exec each, only when they change). */
async function uploadBinaries(session: SshSession, plan: Plan, progress: (m: string) => void): Promise<void> {
  for (const i of plan.items) {
    if (i.resource.kind !== 'binary' || !i.writeContent || !i.variant || !('file' in i.variant.source)) continue
    const local = i.variant.source.file
    // A tarball is checked after extraction, on the host; a plain file can be checked here.
    if (!i.variant.tarMember) {
      const got = await fileSha256(local).catch((e: Error) => {
        throw cannotRun(`cannot read ${local}: ${e.message}`)
      })
      if (got !== i.variant.sha256) {
        throw new ChatmailError(
          `${local} has sha256 ${got}, but ${i.resource.path} is pinned to ${i.variant.sha256}`,
          ExitCode.failed,
        )
      }
    }
    progress(`uploading ${local}`)
    const dest = uploadPath(i.variant.sha256)
    session.roundTrips++
    const stream = await session.open(`mkdir -p "$(dirname ${dest})" && cat >${dest}.part && mv ${dest}.part ${dest}`)
    const r = await collect(stream, createReadStream(local))
    if (r.code !== 0) throw cannotRun(`upload of ${local} failed: ${r.stderr.trim()}`)
  }
}

function auditLine(
  opts: DeployOptions,
  result: string,
  plan: Plan | undefined,
  applied: ApplyOutcome | undefined,
  ms: number,
) {
  const fields = [
    new Date().toISOString(),
    `by=${HostLock.owner().split(' ')[0]}`,
    `domain=${opts.domain ?? '-'}`,
    `result=${result}`,
    `changed=${plan?.changed ?? 0}`,
    `restarted=${applied?.restarted.join(',') || '-'}`,
    `duration=${(ms / 1000).toFixed(1)}s`,
  ]
  if (applied?.error) fields.push(`error=${JSON.stringify(applied.error.slice(0, 300))}`)
  return fields.join(' ')
}

const preflightError = (problems: PreflightProblem[]) =>
  new ChatmailError(
    `preflight failed: ${problems.map((p) => p.message).join('; ')}`,
    ExitCode.failed,
    problems
      .map((p) => p.hint)
      .filter(Boolean)
      .join('; ') || undefined,
  )

/**
 * facts → preflight → plan → apply, under the host lock. Round trips: 1 (lock + facts) + 1 (apply,
 * only when something changed) + 1 per uploaded binary + 1 (audit + unlock).
 */
const checked = (spec: DeploySpec): DeploySpec => {
  const problems = checkSpec(spec)
  if (problems.length > 0) throw new ChatmailError(`invalid stack: ${problems.join('; ')}`, ExitCode.failed)
  return spec
}

/** Builds the spec from the host facts and gathers the facts of its resources (one round trip). */
async function stackFacts(
  session: SshSession,
  build: (host: HostInfo) => Promise<DeploySpec>,
  hostOutput: string,
): Promise<{ spec: DeploySpec; facts: Facts }> {
  const spec = checked(await build(hostInfo(parseFacts(hostOutput))))
  const r = await session.exec('sh', { stdin: resourceFactsScript(spec.resources) })
  if (r.code !== 0 || !/(^|\n)end\n/.test(r.stdout)) {
    throw cannotRun(
      `gathering facts on ${session.target.host} failed: ${r.stderr.trim().split('\n').slice(-3).join('; ') || 'no output'}`,
    )
  }
  return { spec, facts: parseFacts(hostOutput.replace(/(^|\n)end\n[\s\S]*$/, '$1') + r.stdout) }
}

async function runDeploy(opts: DeployOptions): Promise<DeployResult> {
  const started = Date.now()
  const { session } = opts
  const progress = opts.onProgress ?? (() => {})
  const build = typeof opts.spec === 'function' ? opts.spec : undefined
  const staticSpec = typeof opts.spec === 'function' ? undefined : checked(opts.spec)

  progress('gathering facts')
  const script = staticSpec ? factsScript(staticSpec.resources) : hostFactsScript()
  const lock = await HostLock.acquire(session, script, undefined, undefined, opts.dryRun)
  let plan: Plan | undefined
  let applied: ApplyOutcome | undefined
  let result = 'error'
  try {
    const { spec, facts } = build
      ? await stackFacts(session, build, lock.output)
      : { spec: staticSpec as DeploySpec, facts: parseFacts(lock.output) }
    const problems = preflightFacts(facts, { ports: spec.ports, minFreeMb: opts.minFreeMb })
    if (opts.domain && !opts.skipDnsCheck) {
      problems.push(...(await preflightDns(opts.domain, facts, session.target.host, opts.resolver)))
    }
    if (problems.length > 0) {
      result = 'preflight-failed'
      throw preflightError(problems)
    }
    plan = computePlan(spec, facts)
    if (opts.dryRun || plan.changed === 0) {
      result = opts.dryRun ? 'dry-run' : 'ok'
      return { facts, plan, roundTrips: 0, durationMs: 0 }
    }
    if (opts.confirm && !(await opts.confirm(plan))) {
      result = 'declined'
      return { facts, plan, roundTrips: 0, durationMs: 0 }
    }
    await uploadBinaries(session, plan, progress)
    progress(`applying ${plan.changed} change(s)`)
    const script = applyScript(plan)
    // The script is read completely before it runs, so nothing it starts can eat its stdin.
    const r = await session.exec(
      `f=$(mktemp) && cat >"$f" && flock ${APPLY_LOCK} sh "$f"; rc=$?; rm -f "$f"; exit $rc`,
      {
        stdin: script,
      },
    )
    applied = parseApplyOutput(r.stdout, r.stderr)
    if (!applied.ok) {
      result = 'failed'
      throw new ChatmailError(`deploy failed on ${session.target.host}: ${applied.error}`, ExitCode.failed)
    }
    result = 'ok'
    return { facts, plan, applied, roundTrips: 0, durationMs: 0 }
  } finally {
    // A dry run leaves no trace on the host, not even its audit line.
    const audit = opts.dryRun ? [] : [auditLine(opts, result, plan, applied, Date.now() - started)]
    await lock.release(audit).catch(() => {
      progress(`warning: could not write ${AUDIT_LOG} or release the lock cleanly`)
    })
  }
}

export async function deploy(opts: DeployOptions): Promise<DeployResult> {
  const t0 = Date.now()
  const trips0 = opts.session.roundTrips
  const r = await runDeploy(opts)
  return { ...r, roundTrips: opts.session.roundTrips - trips0, durationMs: Date.now() - t0 }
}
