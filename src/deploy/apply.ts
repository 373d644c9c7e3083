import { hostShell } from '../lib/host-shell.js'
import { BACKUP_ROOT, uploadPath } from '../server/paths.js'
import { shellQuote as q } from '../ssh/quote.js'
import type { Plan, PlanItem } from './plan.js'
import type { BinaryResource, FileResource, ServiceResource } from './resources.js'

/**
 * The apply script: one POSIX shell script, run as root in ONE round trip, that performs the
 * changed part of a plan in a fixed order:
 *   packages (one apt-get) → users → directories → binaries → files → daemon-reload →
 *   validation → restarts / reloads → enable / start / stop.
 * Files are written atomically (temp file in the same directory, owner and mode set, rename).
 * Every replaced file is backed up first; when a validation command fails, all files of this run
 * are put back (and new ones removed), nothing is restarted, and the script reports the failure.
 * Result lines start with `@@` (see `parseApplyOutput`); everything else is log.
 */

/** Marks the policy-rc.d the apply script writes, so a leftover of a killed run is recognised. */
export const POLICY_MARK = 'chatmail deploy'

/** The apply script's settings and helpers (templates/shell/apply-lib.sh): the same for every plan. */
export const applyHead = (): string => `BACKUP_ROOT=${BACKUP_ROOT}\n${hostShell('apply-lib.sh')}`

const isUnitPath = (p: string) => /^\/(etc|lib|usr\/lib|run)\/systemd\/system\//.test(p)

function packageSteps(items: PlanItem[]): string[] {
  const pkgs = items.filter((i) => i.resource.kind === 'package' && i.action !== 'unchanged')
  if (pkgs.length === 0) return []
  const names = pkgs
    .map((i) => (i.resource.kind === 'package' ? i.resource.name : ''))
    .map(q)
    .join(' ')
  const debconf = pkgs.flatMap((i) => (i.resource.kind === 'package' ? (i.resource.debconf ?? []) : []))
  // A deploy killed during an earlier install leaves dpkg half-configured: finish that first.
  const lines: string[] = [
    'dpkg --configure -a </dev/null >"$B/dpkg.log" 2>&1 || true',
    // Ours, left by a deploy killed during an install: replace it (it is removed below).
    `if grep -qs '${POLICY_MARK}' /usr/sbin/policy-rc.d; then rm -f /usr/sbin/policy-rc.d; fi`,
    `if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\n# ${POLICY_MARK}: no daemon starts during its install\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && prc=1; else prc=; fi`,
  ]
  if (debconf.length > 0) {
    lines.push(
      // debconf's database is locked while another apt/dpkg runs (an interrupted deploy's): wait for it.
      `n=0; until printf '%s\\n' ${debconf.map(q).join(' ')} | debconf-set-selections 2>"$B/debconf.log"; do n=$((n+1)); [ $n -lt 300 ] || fail "debconf-set-selections failed: $(oneline "$B/debconf.log" 3)"; sleep 1; done`,
    )
  }
  // Daemons are not started by their packages (policy-rc.d): they start once, with our configuration.
  const install = `apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold install --no-install-recommends ${names} </dev/null >"$B/apt.log" 2>&1`
  // A stale or missing package list: update once and retry.
  lines.push(
    `${install} || { apt-get -q -o DPkg::Lock::Timeout=300 update </dev/null >"$B/apt.log" 2>&1 && ${install}; } || fail "apt-get install ${names.replace(/'/g, '')} failed: $(oneline "$B/apt.log" 8)"`,
    `[ -z "$prc" ] || rm -f /usr/sbin/policy-rc.d`,
    `say installed ${pkgs.length}`,
  )
  return lines
}

function resourceStep(i: PlanItem): string[] {
  const r = i.resource
  if (i.action === 'unchanged') return []
  switch (r.kind) {
    case 'user': {
      if (i.action === 'create') {
        const opts = [
          '--system',
          '--user-group',
          r.home ? `--home-dir ${q(r.home)} --create-home` : '--no-create-home',
          `--shell ${q(r.shell ?? '/usr/sbin/nologin')}`,
          r.groups?.length ? `--groups ${q(r.groups.join(','))}` : '',
        ]
        return [`useradd ${opts.filter(Boolean).join(' ')} ${q(r.name)} || fail "cannot create user ${r.name}"`]
      }
      return [`usermod -aG ${q((r.groups ?? []).join(','))} ${q(r.name)} || fail "cannot add ${r.name} to groups"`]
    }
    case 'directory':
      return [
        `install -d -o ${q(r.owner)} -g ${q(r.group)} -m ${q(r.mode)} ${q(r.path)} || fail "cannot create directory ${r.path}"`,
        `if ! { chown ${q(`${r.owner}:${r.group}`)} ${q(r.path)} && chmod ${q(r.mode)} ${q(r.path)}; }; then fail "cannot set owner/mode of ${r.path}"; fi`,
      ]
    case 'binary':
      return binaryStep(r, i)
    case 'file':
      return fileStep(r, i)
    default:
      return []
  }
}

function binaryStep(r: BinaryResource, i: PlanItem): string[] {
  const mode = r.mode ?? '0755'
  if (!i.writeContent) return [`meta ${q(r.path)} root root ${q(mode)}`]
  const v = i.variant!
  const [kind, source] = 'url' in v.source ? ['url', v.source.url] : ['file', uploadPath(v.sha256)]
  return [`bin ${q(r.path)} ${q(v.sha256)} ${q(mode)} ${kind} ${q(source)} ${q(v.tarMember ?? '')}`]
}

function fileStep(r: FileResource, i: PlanItem): string[] {
  if (!i.writeContent) return [`meta ${q(r.path)} ${q(r.owner)} ${q(r.group)} ${q(r.mode)}`]
  const b64 = Buffer.from(r.content, 'utf8')
    .toString('base64')
    .replace(/.{1,76}/g, '$&\n')
  return [`w ${q(r.path)} ${q(r.owner)} ${q(r.group)} ${q(r.mode)} <<'@@EOF'\n${b64}@@EOF`]
}

function commandSteps(items: PlanItem[], phase: 'before-services' | 'after-services'): string[] {
  const lines: string[] = []
  for (const i of items) {
    const r = i.resource
    if (r.kind !== 'command' || i.action === 'unchanged' || (r.phase ?? 'before-services') !== phase) continue
    const undo = phase === 'before-services' ? 'rollback; ' : ''
    lines.push(
      `if ! ( ${r.run} ) >"$B/cmd.log" 2>&1 </dev/null; then msg=$(oneline "$B/cmd.log" 8); ${undo}fail "${r.description.replace(/["$`\\]/g, '\\$&')} failed: $msg"; fi`,
      `say ran ${q(r.id)}`,
    )
  }
  return lines
}

function serviceSteps(items: PlanItem[], unitsChanged: boolean): string[] {
  const services = items.filter((i): i is PlanItem & { resource: ServiceResource } => i.resource.kind === 'service')
  const lines: string[] = []
  const reload = unitsChanged ? 'systemctl daemon-reload || fail "systemctl daemon-reload failed"' : ''
  if (reload) lines.push(reload)
  // Validate everything that will (re)start before touching any service.
  for (const s of services) {
    if (!(s.restart || s.reload || s.start)) continue
    for (const cmd of s.resource.validate ?? []) {
      const changed = (s.triggeredBy ?? []).join(', ') || 'its configuration'
      lines.push(
        `vt=$(date +%s); if ! ( ${cmd} ) >"$B/validate.log" 2>&1; then msg=$(oneline "$B/validate.log" 8); ` +
          // Some checkers (postfix check) log to syslog only: then take what the journal got.
          `[ -n "$msg" ] || msg=$(journalctl --since "@$vt" -o cat --no-pager 2>/dev/null | grep -v -e '^pam_' -e 'session opened' | tail -n 4 | tr '\\n\\t' '  ' | cut -c1-1500); ` +
          `rollback; ${reload ? `${reload}; ` : ''}` +
          `fail "validation of ${s.resource.unit} failed (${cmd.replace(/["$`\\]/g, '\\$&')}) after changing ${changed}: $msg; the previous files were restored and ${s.resource.unit} was not restarted"; fi`,
      )
    }
  }
  for (const s of services) {
    const u = q(s.resource.unit)
    const unit = s.resource.unit
    if (s.enable) lines.push(`systemctl enable --quiet ${u} || fail "cannot enable ${unit}"`)
    if (s.disable) lines.push(`systemctl disable --quiet ${u} || fail "cannot disable ${unit}"`)
    const verb = s.restart ? 'restart' : s.reload ? 'reload-or-restart' : s.start ? 'start' : s.stop ? 'stop' : ''
    if (!verb) continue
    // "start" is done as a restart: a unit that was stopped when the facts were read may have been
    // started since (a package's postinst) with the old configuration.
    const command = verb === 'start' ? 'restart' : verb
    // A unit that fails on its new files gets its old ones back and is restarted on them; the
    // other services still get theirs, and the run fails at the end naming it.
    const files = serviceFiles(s.resource)
    const dr = items.some(
      (i) => i.writeContent && 'path' in i.resource && files.includes(i.resource.path) && isUnitPath(i.resource.path),
    )
    lines.push(
      verb === 'stop'
        ? `systemctl stop ${u} || fail "systemctl stop ${unit} failed"; say stop ${u}`
        : `if systemctl ${command} ${u}; then say ${verb} ${u}; else restart_failed ${command} ${u} ${dr ? 1 : 0} ${files.map(q).join(' ')}; fi`,
    )
  }
  lines.push('[ -z "$failed" ] || fail "$failed"')
  return lines
}

/** The files and binaries a service restarts or reloads on: what a failed restart puts back. */
const serviceFiles = (s: ServiceResource): string[] =>
  [...s.restartOn, ...(s.reloadOn ?? [])].flatMap((r) => (r.kind === 'file' || r.kind === 'binary' ? [r.path] : []))

/** Builds the script for the changed part of the plan ('' when nothing changed). */
export function applyScript(plan: Plan): string {
  if (plan.changed === 0) return ''
  const items = plan.items
  const timed = (phase: string, lines: string[]): string[] =>
    lines.length ? [`t0=$(ms)`, ...lines, `say timing ${phase} $(( $(ms) - t0 ))`] : []
  const body: string[] = [...timed('packages', packageSteps(items))]
  for (const kind of ['user', 'directory', 'binary', 'file'] as const) {
    for (const i of items) if (i.resource.kind === kind) body.push(...resourceStep(i))
  }
  const unitsChanged = items.some(
    (i) => i.resource.kind === 'file' && i.action !== 'unchanged' && i.writeContent && isUnitPath(i.resource.path),
  )
  body.push(...timed('commands', commandSteps(items, 'before-services')))
  body.push(...timed('services', serviceSteps(items, unitsChanged)))
  body.push(...timed('commands-after', commandSteps(items, 'after-services')))
  body.push('rm -rf "$B"', "say 'done'")
  return `${applyHead()}${body.join('\n')}\n`
}

export interface ApplyOutcome {
  ok: boolean
  error?: string
  written: string[]
  restarted: string[]
  started: string[]
  reloaded: string[]
  stopped: string[]
  /** Units that failed on their new files and were put back on their old ones. */
  failedServices: string[]
  installed: number
  /** Milliseconds spent on the host per phase: packages, commands, services, commands-after. */
  timings: Record<string, number>
  log: string
}

export function parseApplyOutput(stdout: string, stderr = ''): ApplyOutcome {
  const out: ApplyOutcome = {
    ok: false,
    written: [],
    restarted: [],
    started: [],
    reloaded: [],
    stopped: [],
    failedServices: [],
    installed: 0,
    timings: {},
    log: '',
  }
  const log: string[] = []
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('@@')) {
      if (line) log.push(line)
      continue
    }
    const [tag, ...rest] = line.slice(2).split('\t')
    const value = rest.join('\t')
    if (tag === 'done') out.ok = true
    else if (tag === 'fail') out.error = value
    else if (tag === 'wrote' || tag === 'meta') out.written.push(value)
    else if (tag === 'restart') out.restarted.push(value)
    else if (tag === 'reload-or-restart') out.reloaded.push(value)
    else if (tag === 'start') out.started.push(value)
    else if (tag === 'stop') out.stopped.push(value)
    else if (tag === 'restart-failed') out.failedServices.push(value)
    else if (tag === 'installed') out.installed = Number(value)
    else if (tag === 'timing' && rest[0]) out.timings[rest[0]] = Number(rest[1])
  }
  if (!out.ok && !out.error)
    out.error = `the apply script ended early: ${stderr.trim().split('\n').slice(-3).join('; ') || 'no output'}`
  out.log = [...log, stderr.trim()].filter(Boolean).join('\n')
  return out
}
