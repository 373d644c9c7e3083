import { createHash } from 'node:crypto'
import { loadTemplate, type TemplateVars } from '../server/template.js'

/**
 * The resource model. A stack (src/deploy/stacks/) is a set of services (src/deploy/services/),
 * each declaring resources; flattened, they make a `DeploySpec`: a list of resources (each with a
 * unique `id`) and the ports the stack will own. The engine orders the work (packages → users →
 * directories → binaries → files → daemon-reload → validation → restarts → service state) and
 * restarts a service only when one of the resources its `restartOn` names changed.
 *
 * Managed configuration vs server data: a resource is configuration that deploy owns and rewrites
 * to match the stack, unless it is marked `data`: then deploy creates it once, when it is absent,
 * and never rewrites, chowns or removes it (accounts, mail, DKIM keys; certificates are made by
 * command resources whose `unless` test keeps an existing one). Deploy never deletes anything.
 */

export type Arch = 'x86_64' | 'aarch64'

export interface PackageResource {
  kind: 'package'
  id: string
  name: string
  /** debconf-set-selections lines, e.g. `postfix postfix/mailname string example.org`. */
  debconf?: string[]
}

export interface UserResource {
  kind: 'user'
  id: string
  name: string
  home?: string
  shell?: string
  /** Supplementary groups (must exist: from a package or another user resource). */
  groups?: string[]
}

interface Ownership {
  owner: string
  group: string
  /** Octal string, e.g. '0640'. */
  mode: string
}

export interface DirectoryResource extends Ownership {
  kind: 'directory'
  id: string
  path: string
}

export interface FileResource extends Ownership {
  kind: 'file'
  id: string
  path: string
  content: string
  /** The plan never shows the content or a diff; the facts script never reads it back. */
  secret?: boolean
  /**
   * Server data, not configuration: `content` is the initial content, written only when the file
   * does not exist; an existing file is never rewritten, re-owned or removed (and never read back).
   */
  data?: boolean
}

export type BinarySource = { url: string } | { file: string }

export interface BinaryVariant {
  /** sha256 of the installed file (for a tarball: of the extracted member). */
  sha256: string
  source: BinarySource
  /** For a .tar.gz source: the member to install, e.g. `./iroh-relay` (tar --wildcards patterns allowed). */
  tarMember?: string
}

export interface BinaryResource {
  kind: 'binary'
  id: string
  path: string
  mode?: string
  variants: Partial<Record<Arch, BinaryVariant>>
}

export interface ServiceResource {
  kind: 'service'
  id: string
  unit: string
  enabled: boolean
  running: boolean
  /**
   * The resources whose change restarts this service (its unit file, configs, binary), by
   * reference to the resource objects. A failed restart puts these files back and restarts the
   * service on them.
   */
  restartOn: Resource[]
  /** Commands that must succeed before the restart, e.g. `doveconf -n >/dev/null`. */
  validate?: string[]
  /** `reload` instead of `restart` when only these resources changed (optional). */
  reloadOn?: Resource[]
}

/**
 * A command for what no declarative resource covers (making a self-signed certificate, asking
 * an ACME server). It runs when `unless` fails on the host, and counts as a change when it runs.
 */
export interface CommandResource {
  kind: 'command'
  id: string
  /** What it does, for the plan: 'create a self-signed certificate for example.org'. */
  description: string
  /** Shell test run while gathering facts; exit 0 means nothing to do. */
  unless: string
  /** Shell commands run as root. */
  run: string
  /** `before-services` (default): after files, before validation and restarts. `after-services`: at the very end. */
  phase?: 'before-services' | 'after-services'
}

export type Resource =
  | CommandResource
  | PackageResource
  | UserResource
  | DirectoryResource
  | FileResource
  | BinaryResource
  | ServiceResource

/** A port the deployed stack will own, and the process names allowed to hold it already. */
export interface PortClaim {
  port: number
  proto: 'tcp' | 'udp'
  owners: string[]
}

export interface DeploySpec {
  resources: Resource[]
  ports: PortClaim[]
}

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

// Builders: what a stack writes.

export const pkg = (name: string, debconf?: string[]): PackageResource => ({
  kind: 'package',
  id: `package:${name}`,
  name,
  debconf,
})

export const user = (name: string, opts: Omit<UserResource, 'kind' | 'id' | 'name'> = {}): UserResource => ({
  kind: 'user',
  id: `user:${name}`,
  name,
  ...opts,
})

export const directory = (path: string, own: Partial<Ownership> = {}): DirectoryResource => ({
  kind: 'directory',
  id: `dir:${path}`,
  path,
  owner: own.owner ?? 'root',
  group: own.group ?? own.owner ?? 'root',
  mode: own.mode ?? '0755',
})

export const file = (
  path: string,
  content: string,
  own: Partial<Ownership> & { secret?: boolean } = {},
): FileResource => ({
  kind: 'file',
  id: `file:${path}`,
  path,
  content,
  owner: own.owner ?? 'root',
  group: own.group ?? own.owner ?? 'root',
  mode: own.mode ?? '0644',
  secret: own.secret,
})

/** Server data: created with `initial` (owner, mode) when absent, never touched afterwards. */
export const dataFile = (path: string, initial: string, own: Partial<Ownership> = {}): FileResource => ({
  ...file(path, initial, own),
  data: true,
})

/** A file rendered from `templates/<template>` with `{{name}}` placeholders. */
export async function templateFile(
  path: string,
  template: string,
  vars: TemplateVars,
  own: Partial<Ownership> & { secret?: boolean; templatesDir?: string } = {},
): Promise<FileResource> {
  return file(path, await loadTemplate(template, vars, own.templatesDir), own)
}

export const binary = (path: string, variants: BinaryResource['variants'], mode = '0755'): BinaryResource => ({
  kind: 'binary',
  id: `binary:${path}`,
  path,
  mode,
  variants,
})

export const command = (
  name: string,
  description: string,
  unless: string,
  run: string,
  phase: CommandResource['phase'] = 'before-services',
): CommandResource => ({ kind: 'command', id: `command:${name}`, description, unless, run, phase })

export const service = (unit: string, opts: Partial<Omit<ServiceResource, 'kind' | 'id' | 'unit'>> = {}) =>
  ({
    kind: 'service',
    id: `service:${unit}`,
    unit,
    enabled: opts.enabled ?? true,
    running: opts.running ?? true,
    restartOn: opts.restartOn ?? [],
    validate: opts.validate,
    reloadOn: opts.reloadOn,
  }) satisfies ServiceResource

/** The ids of the resources a service restarts or reloads on. */
export const idsOf = (rs: Resource[] | undefined): string[] => (rs ?? []).map((r) => r.id)

/** Rejects duplicate ids, restart triggers that are not in the spec, and relative paths. */
export function checkSpec(spec: DeploySpec): string[] {
  const problems: string[] = []
  const ids = new Set<string>()
  for (const r of spec.resources) {
    if (ids.has(r.id)) problems.push(`duplicate resource ${r.id}`)
    ids.add(r.id)
    if ('path' in r && !r.path.startsWith('/')) problems.push(`${r.id}: path must be absolute`)
    if ('mode' in r && r.mode !== undefined && !/^0?[0-7]{3,4}$/.test(r.mode)) problems.push(`${r.id}: bad mode`)
  }
  for (const r of spec.resources) {
    if (r.kind !== 'service') continue
    for (const dep of [...r.restartOn, ...(r.reloadOn ?? [])]) {
      if (!ids.has(dep.id)) problems.push(`${r.id}: restartOn names a resource not in the stack: ${dep.id}`)
      if (dep.kind === 'file' && dep.data) problems.push(`${r.id}: restarts on server data ${dep.id}`)
    }
  }
  return problems
}
