import { hostShell } from '../lib/host-shell.js'
import { shellQuote } from '../ssh/quote.js'
import { type Resource, sha256 } from './resources.js'

/**
 * Facts: everything the plan and the preflight need, gathered by ONE remote shell script whose
 * output is one tab-separated record per line (kind first). The script is built from the
 * resources, so it asks only about what the stack declares.
 */

/** Files up to this size come back with their content, for diffs (never secret ones). */
export const MAX_DIFF_BYTES = 64 * 1024

export interface FileFact {
  exists: boolean
  /** Something else (a directory, a socket) is at the path. */
  notAFile?: boolean
  owner?: string
  group?: string
  mode?: string
  size?: number
  sha256?: string
  content?: string
}

export interface DirFact {
  exists: boolean
  owner?: string
  group?: string
  mode?: string
}

export interface PackageFact {
  installed: boolean
  status: string
  version?: string
}

export interface UserFact {
  exists: boolean
  home?: string
  shell?: string
  groups?: string[]
}

export interface UnitFact {
  load: string
  active: string
  enabled: string
  /** ActiveEnterTimestampMonotonic, microseconds; changes on every (re)start. */
  activeSince: string
}

export interface Listener {
  proto: 'tcp' | 'udp'
  address: string
  port: number
  processes: string[]
}

export interface Facts {
  uid: number
  os: { id: string; versionId: string; codename: string }
  arch: string
  diskFreeKb: number
  addresses: string[]
  listeners: Listener[]
  files: Map<string, FileFact>
  dirs: Map<string, DirFact>
  packages: Map<string, PackageFact>
  users: Map<string, UserFact>
  units: Map<string, UnitFact>
  /** Command resources: id → true when its `unless` test passed (nothing to do). */
  commands: Map<string, boolean>
}

/** Facts about the host alone (OS release, arch, ports, installed packages), ending in `end`. */
export function hostFactsScript(): string {
  return `${hostShell('facts-host.sh')}printf 'end\\n'\n`
}

/** The batched facts script for these resources, host facts included (run as root with `sh`). */
export function factsScript(resources: Resource[]): string {
  return hostShell('facts-host.sh') + resourceFactsScript(resources)
}

/**
 * Facts about these resources only, ending in `end`. One call per kind (facts-lib.sh), so the
 * script starts a few processes in all rather than a few per resource. Files carry the sha256 the
 * deploy would write: only a file that differs is read back for the diff.
 */
export function resourceFactsScript(resources: Resource[]): string {
  const lines = [`MAX_DIFF_BYTES=${MAX_DIFF_BYTES}`, hostShell('facts-lib.sh')]
  const files: string[] = []
  const dirs: string[] = []
  const users: string[] = []
  const units: string[] = []
  const commands: string[] = []
  const packages: string[] = []
  for (const r of resources) {
    switch (r.kind) {
      case 'file':
        files.push(`${shellQuote(r.path)} ${r.secret || r.data ? 0 : 1} ${sha256(r.content)}`)
        break
      case 'binary':
        files.push(`${shellQuote(r.path)} 0 -`)
        break
      case 'directory':
        dirs.push(shellQuote(r.path))
        break
      case 'user':
        users.push(shellQuote(r.name))
        break
      case 'service':
        units.push(shellQuote(r.unit))
        break
      case 'package':
        packages.push(shellQuote(r.name))
        break
      case 'command':
        commands.push(
          `if ( ${r.unless} ) >/dev/null 2>&1 </dev/null; then printf 'cmd\\t%s\\t1\\n' ${shellQuote(r.id)}; else printf 'cmd\\t%s\\t0\\n' ${shellQuote(r.id)}; fi`,
        )
        break
    }
  }
  const call = (fn: string, args: string[]) => {
    if (args.length > 0) lines.push(`${fn} \\\n  ${args.join(' \\\n  ')}`)
  }
  call('f', files)
  call('d', dirs)
  call('u', users)
  call('s', units)
  lines.push(...commands)
  if (packages.length > 0) {
    lines.push(
      `dpkg-query -W -f='pkg\\t\${Package}\\t\${db:Status-Status}\\t\${Version}\\n' ${packages.join(' ')} 2>/dev/null || true`,
    )
  }
  lines.push(`printf 'end\\n'`)
  return `${lines.join('\n')}\n`
}

/**
 * A `listen` record (`PROTO`, `ADDRESS:PORT` as ss prints it, the socket's inode) → listener,
 * without its processes yet (`holder` records add them by inode); e.g. `tcp`, `[::]:3478`.
 */
export function parseListener(proto: string, local: string): Listener | undefined {
  if ((proto !== 'tcp' && proto !== 'udp') || !local) return undefined
  const idx = local.lastIndexOf(':')
  const port = Number(local.slice(idx + 1))
  if (idx < 0 || !Number.isInteger(port) || port < 0 || port > 65535) return undefined
  const address = local
    .slice(0, idx)
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '')
  return { proto, address, port, processes: [] }
}

/** A process name as the script sends it: /proc/PID/comm in hex (so no name can start a record), without its newline. */
export function processName(hex: string): string | undefined {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return undefined
  return Buffer.from(hex, 'hex').toString('utf8').replace(/\n$/, '')
}

/** Facts of a host about which nothing is known yet (the base that parseFacts fills). */
export function emptyFacts(): Facts {
  return {
    uid: -1,
    os: { id: '', versionId: '', codename: '' },
    arch: '',
    diskFreeKb: 0,
    addresses: [],
    listeners: [],
    files: new Map(),
    dirs: new Map(),
    packages: new Map(),
    users: new Map(),
    units: new Map(),
    commands: new Map(),
  }
}

export function parseFacts(output: string): Facts {
  const facts = emptyFacts()
  const byInode = new Map<string, Listener>()
  let ended = false
  for (const line of output.split('\n')) {
    if (line === '') continue
    const [kind, ...f] = line.split('\t')
    switch (kind) {
      case 'uid':
        facts.uid = Number(f[0])
        break
      case 'os':
        facts.os = { id: f[0] ?? '', versionId: f[1] ?? '', codename: f[2] ?? '' }
        break
      case 'arch':
        facts.arch = f[0] ?? ''
        break
      case 'disk':
        facts.diskFreeKb = Number(f[0])
        break
      case 'addr':
        if (f[0]) facts.addresses.push(f[0])
        break
      case 'listen': {
        const l = parseListener(f[0] ?? '', f[1] ?? '')
        if (l) {
          facts.listeners.push(l)
          if (f[2] && f[2] !== '0') byInode.set(f[2], l)
        }
        break
      }
      case 'holder': {
        const l = byInode.get(f[0] ?? '')
        const name = processName(f[1] ?? '')
        if (l && name !== undefined && !l.processes.includes(name)) l.processes.push(name)
        break
      }
      case 'file': {
        const [path, state, owner, group, mode, size, hash, content] = f
        if (!path) break
        if (state === '1') {
          facts.files.set(path, {
            exists: true,
            owner,
            group,
            mode: normalizeMode(mode ?? ''),
            size: Number(size),
            sha256: hash,
            content: content ? Buffer.from(content, 'base64').toString('utf8') : undefined,
          })
        } else {
          facts.files.set(path, { exists: false, notAFile: state === 'other' })
        }
        break
      }
      case 'dir': {
        const [path, state, owner, group, mode] = f
        if (path)
          facts.dirs.set(
            path,
            state === '1' ? { exists: true, owner, group, mode: normalizeMode(mode ?? '') } : { exists: false },
          )
        break
      }
      case 'user': {
        const [name, state, home, shell, groups] = f
        if (name) {
          facts.users.set(
            name,
            state === '1'
              ? { exists: true, home, shell, groups: (groups ?? '').split(' ').filter(Boolean) }
              : { exists: false },
          )
        }
        break
      }
      case 'pkg': {
        const [name, status, version] = f
        if (name) facts.packages.set(name, { installed: status === 'installed', status: status ?? '', version })
        break
      }
      case 'unit': {
        // Properties in sorted order: ActiveEnterTimestampMonotonic, ActiveState, LoadState, UnitFileState.
        const [name, since, active, load, enabled] = f
        if (name)
          facts.units.set(name, {
            activeSince: since ?? '',
            active: active ?? '',
            load: load ?? '',
            enabled: enabled ?? '',
          })
        break
      }
      case 'cmd':
        if (f[0]) facts.commands.set(f[0], f[1] === '1')
        break
      case 'end':
        ended = true
        break
    }
  }
  if (!ended) throw new Error('the facts script output is incomplete (no end marker)')
  return facts
}

/** '644' / '0644' / '4755' → '0644' / '0644' / '4755'. */
export function normalizeMode(mode: string): string {
  return mode.replace(/^0+/, '').padStart(4, '0')
}
