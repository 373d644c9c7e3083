/**
 * The host group (only with --ssh, or when `deploy host` runs the doctor): the server from the
 * inside, read-only, from one batched script over one SSH connection (host-probe.ts).
 * Thresholds: disk warn at HOST_DISK_WARN_PCT used, fail at HOST_DISK_FAIL_PCT or under
 * HOST_DISK_FAIL_FREE_KB free; memory warn under HOST_MEM_WARN_PCT available, fail under
 * HOST_MEM_FAIL_PCT; clock warn at HOST_CLOCK_WARN_MS skew, fail at HOST_CLOCK_FAIL_MS.
 */
import { AUDIT_LOG, DISK_PATHS, PATHS } from '../../server/paths.js'
import { defaultServerConfig, describeServer, portsOf, type ServerDescription } from '../../server/services.js'
import type { HostFacts } from '../host-probe.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'

export const HOST_DISK_WARN_PCT = 85
export const HOST_DISK_FAIL_PCT = 95
export const HOST_DISK_FAIL_FREE_KB = 200 * 1024
export const HOST_MEM_WARN_PCT = 10
export const HOST_MEM_FAIL_PCT = 3
export const HOST_CLOCK_WARN_MS = 5_000
export const HOST_CLOCK_FAIL_MS = 60_000

/** What runs on the host: the units and ports the config deploys (the default ports without a config). */
const serverOf = (ctx: CheckContext): ServerDescription =>
  ctx.options.server ?? describeServer(defaultServerConfig(ctx.options.domain))

const NO_SSH = 'no --ssh: the host checks need SSH access to the server'

/** The host's facts, or the outcome every host check reports when they could not be read. */
async function hostFacts(ctx: CheckContext): Promise<HostFacts | CheckOutcome> {
  const probe = ctx.options.host
  if (!probe) return skip(NO_SSH)
  try {
    return await probe.facts(serverOf(ctx))
  } catch (err) {
    const e = err as Error & { hint?: string }
    return fail(
      `cannot read the host over SSH (${probe.label}): ${e.message}`,
      e.hint ?? 'check --ssh, -i/--identity and --known-hosts (the same rules as deploy host)',
    )
  }
}

const isOutcome = (v: HostFacts | CheckOutcome): v is CheckOutcome => 'status' in v

const installed = (f: HostFacts, server: ServerDescription) => server.units.filter((u) => f.units[u]?.[0] === 'loaded')

function judgeUnits(f: HostFacts, server: ServerDescription): CheckOutcome {
  const units = installed(f, server)
  if (units.length === 0) return skip(`none of the chatmail units (${server.units.join(', ')}) exists on this host`)
  const down = units.filter((u) => f.units[u]?.[1] !== 'active').map((u) => `${u} is ${f.units[u]?.[1]}`)
  const problems = [
    ...down,
    ...f.failed.filter((u) => !down.some((d) => d.startsWith(u.replace(/\.service$/, ' ')))).map((u) => `${u} failed`),
  ]
  if (problems.length > 0) {
    const first = down[0]?.split(' ')[0] ?? f.failed[0]
    return fail(
      problems.join('; '),
      `systemctl status ${first} and journalctl -u ${first} say why; fix it and systemctl restart ${first}`,
    )
  }
  return ok(`${units.join(', ')} active; no failed units`)
}

function judgePorts(f: HostFacts, server: ServerDescription): CheckOutcome {
  const units = installed(f, server)
  if (units.length === 0) return skip('no chatmail units on this host, so no ports to expect')
  const wrong: string[] = []
  let checked = 0
  for (const unit of units) {
    for (const want of portsOf(server, unit)) {
      checked++
      const held = f.listening.filter((l) => l.proto === want.proto && l.port === want.port)
      const heldBy = [
        ...new Set(held.flatMap((l) => l.units.map((u, i) => `${l.programs[i] ?? '?'} (${u || 'no unit'})`))),
      ]
      if (held.length === 0) wrong.push(`nothing listens on ${want.proto} ${want.port} (${unit})`)
      else if (!held.some((l) => l.units.includes(unit))) {
        wrong.push(`${want.proto} ${want.port} is held by ${heldBy.join(', ')}, not ${unit}`)
      }
    }
  }
  if (wrong.length > 0) {
    return fail(
      wrong.join('; '),
      'ss -tulnp shows who holds each port: stop what took it, then systemctl restart the unit that should own it',
    )
  }
  return ok(`${checked} ports held by their programs`)
}

const mib = (kb: number) => `${Math.round(kb / 1024)} MiB`

export function judgeDisks(f: Pick<HostFacts, 'disks'>, paths: readonly string[] = DISK_PATHS): CheckOutcome {
  if (f.disks.length === 0) return fail(`df printed nothing for ${paths.join(', ')}`, 'run df -P on the host')
  const line = (d: HostFacts['disks'][number]) => `${d.mount} ${d.usedPct}% used, ${mib(d.availKb)} free`
  const full = f.disks.filter((d) => d.usedPct >= HOST_DISK_FAIL_PCT || d.availKb < HOST_DISK_FAIL_FREE_KB)
  const hint =
    'free space (journalctl --vacuum-size, old mail, apt-get clean) or grow the disk: mail delivery and logins stop when it is full'
  if (full.length > 0) return fail(full.map(line).join('; '), hint)
  const filling = f.disks.filter((d) => d.usedPct >= HOST_DISK_WARN_PCT)
  if (filling.length > 0) return warn(filling.map(line).join('; '), hint)
  return ok(f.disks.map(line).join('; '))
}

export function judgeMemory(f: Pick<HostFacts, 'mem'>): CheckOutcome {
  const { totalKb, availKb } = f.mem
  if (!totalKb) return fail('no MemTotal in /proc/meminfo', 'read /proc/meminfo on the host')
  const pct = Math.round((availKb / totalKb) * 100)
  const detail = `${mib(availKb)} of ${mib(totalKb)} available (${pct}%)`
  const hint =
    'find what uses the memory (ps aux --sort=-rss | head) or add memory/swap: the kernel kills services when it runs out'
  if (pct < HOST_MEM_FAIL_PCT) return fail(detail, hint)
  if (pct < HOST_MEM_WARN_PCT) return warn(detail, hint)
  return ok(detail)
}

export function judgeClock(skewMs: number): CheckOutcome {
  if (!Number.isFinite(skewMs)) return fail('the host printed no time', 'run date on the host')
  const s = (skewMs / 1000).toFixed(1)
  const detail = `the host's clock is ${skewMs >= 0 ? `${s} s ahead of` : `${s.slice(1)} s behind`} this machine's`
  const hint =
    'TURN credentials and certificates are timestamps: turn on time sync on the host (timedatectl set-ntp true; systemd-timesyncd or chrony), and check this machine’s clock too'
  if (Math.abs(skewMs) >= HOST_CLOCK_FAIL_MS) return fail(detail, hint)
  if (Math.abs(skewMs) >= HOST_CLOCK_WARN_MS) return warn(detail, hint)
  return ok(detail)
}

function judgeStale(f: HostFacts): CheckOutcome {
  if (f.stale.length === 0) return ok('no process runs a replaced binary or library')
  const names = [...new Set(f.stale.map((l) => l.split(' ')[0]))]
  return warn(
    `running a replaced binary or library: ${f.stale.slice(0, 8).join('; ')}${f.stale.length > 8 ? ` (+${f.stale.length - 8} more)` : ''}`,
    `restart what still runs the old code (systemctl restart for ${names.join(', ')}; needrestart lists units), or reboot after a kernel/libc update`,
  )
}

function judgeVersion(f: HostFacts, server: ServerDescription, deployed: boolean): CheckOutcome {
  const iroh = f.iroh ? `iroh-relay ${f.iroh.version} (sha256 ${f.iroh.sha256.slice(0, 12)}…)` : undefined
  const last = f.lastDeploy ? `last deploy ${f.lastDeploy.split(' ')[0]}` : undefined
  if (!iroh && installed(f, server).includes('iroh-relay')) {
    return fail(
      `${PATHS.irohRelay} is missing or not executable`,
      'deploy again (chatmail deploy host) to reinstall the pinned iroh-relay',
    )
  }
  if (!last) {
    const detail = `no successful chatmail deploy recorded in ${AUDIT_LOG}${iroh ? `; ${iroh}` : ''}`
    return deployed
      ? warn(detail, 'run chatmail deploy host: the config says chatmail deployed this server')
      : skip(detail)
  }
  return ok([last, iroh].filter(Boolean).join('; '))
}

function hostCheck(judge: (f: HostFacts, ctx: CheckContext) => CheckOutcome): CheckDef['run'] {
  return async (ctx) => {
    const f = await hostFacts(ctx)
    return isOutcome(f) ? f : judge(f, ctx)
  }
}

const def = (id: string, title: string, judge: (f: HostFacts, ctx: CheckContext) => CheckOutcome): CheckDef => ({
  id,
  group: 'host',
  title,
  timeoutHint: 'the host did not answer over SSH in time: check --ssh and that sshd runs, or raise --timeout',
  run: hostCheck(judge),
})

export const hostChecks: CheckDef[] = [
  def('host.units', 'chatmail units active', (f, ctx) => judgeUnits(f, serverOf(ctx))),
  def('host.ports', 'ports owned by the right programs', (f, ctx) => judgePorts(f, serverOf(ctx))),
  def('host.disk', 'free disk space', (f, ctx) => judgeDisks(f, serverOf(ctx).diskPaths)),
  def('host.memory', 'available memory', judgeMemory),
  def('host.clock', 'host clock', (f) => judgeClock(f.clockSkewMs)),
  def('host.restart-needed', 'no service runs replaced code', judgeStale),
  def('host.version', 'deployed versions', (f, ctx) => judgeVersion(f, serverOf(ctx), ctx.options.deployed === true)),
]
