import { ChatmailError, ExitCode } from '../lib/errors.js'
import { unifiedDiff } from './diff.js'
import { type Facts, normalizeMode } from './facts.js'
import {
  type Arch,
  type BinaryVariant,
  type DeploySpec,
  idsOf,
  type Resource,
  type ServiceResource,
  sha256,
} from './resources.js'

export type Action = 'unchanged' | 'create' | 'update'

export interface PlanItem {
  resource: Resource
  action: Action
  /** Human-readable, one per change: 'mode 0644 → 0640', 'content changed (secret)', 'restart' … */
  changes: string[]
  /** Unified diff for a file whose old content is known and not secret. */
  diff?: string
  /** Files and binaries: the content must be written (not only owner or mode). */
  writeContent?: boolean
  /** Binaries: the variant chosen for the host's architecture. */
  variant?: BinaryVariant
  /** Services. */
  restart?: boolean
  reload?: boolean
  /** Resource ids that caused the restart or reload. */
  triggeredBy?: string[]
  enable?: boolean
  disable?: boolean
  start?: boolean
  stop?: boolean
}

export interface Plan {
  items: PlanItem[]
  arch: Arch
  /** Items that are not 'unchanged'. */
  changed: number
}

const ownership = (
  want: { owner: string; group: string; mode: string },
  have: { owner?: string; group?: string; mode?: string },
): string[] => {
  const changes: string[] = []
  if (have.owner !== want.owner || have.group !== want.group) {
    changes.push(`owner ${have.owner}:${have.group} → ${want.owner}:${want.group}`)
  }
  if (have.mode !== normalizeMode(want.mode)) changes.push(`mode ${have.mode} → ${normalizeMode(want.mode)}`)
  return changes
}

const item = (resource: Resource, changes: string[], created: boolean, extra: Partial<PlanItem> = {}): PlanItem => ({
  resource,
  action: created ? 'create' : changes.length > 0 ? 'update' : 'unchanged',
  changes,
  ...extra,
})

function planResource(r: Exclude<Resource, ServiceResource>, facts: Facts, arch: Arch): PlanItem {
  switch (r.kind) {
    case 'command':
      return facts.commands.get(r.id) ? item(r, [], false) : item(r, [r.description], true)
    case 'package': {
      const fact = facts.packages.get(r.name)
      return fact?.installed ? item(r, [], false) : item(r, ['install'], true)
    }
    case 'user': {
      const fact = facts.users.get(r.name)
      if (!fact?.exists) return item(r, ['create'], true)
      const missing = (r.groups ?? []).filter((g) => !fact.groups?.includes(g))
      return item(r, missing.length > 0 ? [`add to groups ${missing.join(', ')}`] : [], false)
    }
    case 'directory': {
      const fact = facts.dirs.get(r.path)
      if (!fact?.exists) return item(r, [`create ${r.owner}:${r.group} ${normalizeMode(r.mode)}`], true)
      return item(r, ownership(r, fact), false)
    }
    case 'file': {
      const fact = facts.files.get(r.path)
      if (fact?.notAFile) {
        throw new ChatmailError(`${r.path} exists on the host but is not a regular file`, ExitCode.failed)
      }
      if (r.data && fact?.exists) return item(r, [], false)
      if (!fact?.exists) {
        const what = r.data
          ? 'new (server data: created once, never overwritten)'
          : r.secret
            ? 'new (secret)'
            : `new, ${Buffer.byteLength(r.content)} bytes`
        return item(r, [what], true, {
          writeContent: true,
          diff: r.secret || r.data ? undefined : unifiedDiff('', r.content, '/dev/null', r.path),
        })
      }
      const changes: string[] = []
      let diff: string | undefined
      const contentChanged = fact.sha256 !== sha256(r.content)
      if (contentChanged) {
        if (r.secret) changes.push('content changed (secret)')
        else if (fact.content !== undefined) {
          diff = unifiedDiff(fact.content, r.content, r.path, r.path)
          changes.push('content changed')
        } else changes.push(`content changed (${fact.size} → ${Buffer.byteLength(r.content)} bytes)`)
      }
      changes.push(...ownership(r, fact))
      return item(r, changes, false, { writeContent: contentChanged, diff })
    }
    case 'binary': {
      const variant = r.variants[arch]
      if (!variant) {
        throw new ChatmailError(
          `${r.path}: no build for ${arch}`,
          ExitCode.failed,
          `supported: ${Object.keys(r.variants).join(', ')}`,
        )
      }
      const fact = facts.files.get(r.path)
      const want = { owner: 'root', group: 'root', mode: r.mode ?? '0755' }
      if (!fact?.exists)
        return item(r, [`install ${variant.sha256.slice(0, 12)}…`], true, { writeContent: true, variant })
      const changes =
        fact.sha256 === variant.sha256 ? [] : [`sha256 ${fact.sha256?.slice(0, 12)}… → ${variant.sha256.slice(0, 12)}…`]
      changes.push(...ownership(want, fact))
      return item(r, changes, false, { writeContent: fact.sha256 !== variant.sha256, variant })
    }
  }
}

function planService(r: ServiceResource, facts: Facts, byId: Map<string, PlanItem>): PlanItem {
  const fact = facts.units.get(r.unit)
  const changedIds = (ids: string[] | undefined) => (ids ?? []).filter((id) => byId.get(id)?.action !== 'unchanged')
  const restartIds = changedIds(idsOf(r.restartOn))
  const reloadIds = changedIds(idsOf(r.reloadOn)).filter((id) => !restartIds.includes(id))
  const isActive = fact?.active === 'active' || fact?.active === 'activating' || fact?.active === 'reloading'
  const changes: string[] = []
  const extra: Partial<PlanItem> = {}
  if (r.running && !isActive) {
    extra.start = true
    changes.push('start')
  } else if (r.running && restartIds.length > 0) {
    extra.restart = true
    extra.triggeredBy = restartIds
    changes.push(`restart (${restartIds.join(', ')} changed)`)
  } else if (r.running && reloadIds.length > 0) {
    extra.reload = true
    extra.triggeredBy = reloadIds
    changes.push(`reload (${reloadIds.join(', ')} changed)`)
  } else if (!r.running && isActive) {
    extra.stop = true
    changes.push('stop')
  }
  // 'static', 'indirect', 'generated', 'alias': nothing to enable; 'masked' must be unmasked by hand.
  const enabledState = fact?.enabled ?? ''
  if (r.enabled && (enabledState === 'disabled' || enabledState === '' || fact?.load === 'not-found')) {
    extra.enable = true
    changes.push('enable')
  } else if (!r.enabled && enabledState === 'enabled') {
    extra.disable = true
    changes.push('disable')
  }
  return item(r, changes, false, extra)
}

/** Compares every resource with its fact. Pure. */
export function computePlan(spec: DeploySpec, facts: Facts): Plan {
  if (facts.arch !== 'x86_64' && facts.arch !== 'aarch64') {
    throw new ChatmailError(
      `unsupported architecture ${facts.arch}`,
      ExitCode.failed,
      'x86_64 and aarch64 are supported',
    )
  }
  const arch: Arch = facts.arch
  const byId = new Map<string, PlanItem>()
  const items: PlanItem[] = []
  for (const r of spec.resources) {
    if (r.kind === 'service') continue
    const planned = planResource(r, facts, arch)
    byId.set(r.id, planned)
  }
  for (const r of spec.resources) {
    const planned = r.kind === 'service' ? planService(r, facts, byId) : byId.get(r.id)!
    items.push(planned)
  }
  return { items, arch, changed: items.filter((i) => i.action !== 'unchanged').length }
}

const SYMBOL: Record<Action, string> = { unchanged: ' ', create: '+', update: '~' }

/** Plain-text plan: one line per changed resource, then diffs; `verbose` lists unchanged ones too. */
export function formatPlan(plan: Plan, verbose = false): string {
  const lines: string[] = []
  for (const i of plan.items) {
    if (i.action === 'unchanged' && !verbose) continue
    lines.push(`${SYMBOL[i.action]} ${i.resource.id}${i.changes.length ? `: ${i.changes.join('; ')}` : ''}`)
    if (i.diff)
      lines.push(
        ...i.diff
          .trimEnd()
          .split('\n')
          .map((l) => `    ${l}`),
      )
  }
  lines.push(`${plan.changed} changed, ${plan.items.length - plan.changed} unchanged`)
  return `${lines.join('\n')}\n`
}
