import { hostShell } from '../lib/host-shell.js'
import type { ServerDescription } from '../server/services.js'

/**
 * Host facts for the host checks, gathered over ONE SSH connection with ONE read-only script
 * (systemctl, ss, find, df, /proc, date, sha256sum: nothing is written on the host;
 * templates/shell/host-probe.sh). The caller owns
 * the connection: `doctor --ssh` opens it, `deploy host` lends its own.
 */

export interface HostExec {
  exec(command: string): Promise<{ code: number; stdout: string; stderr: string }>
}

export interface HostFacts {
  /** unit → [LoadState, ActiveState], e.g. ['loaded', 'active'] or ['not-found', 'inactive']. */
  units: Record<string, [string, string]>
  /** Every failed unit on the host. */
  failed: string[]
  /** Listening sockets: proto (tcp/udp), port, owning programs and the systemd units they run in. */
  listening: { proto: string; port: number; programs: string[]; units: string[] }[]
  /** Mounts of the description's diskPaths: mount point, size and available KiB, used percent. */
  disks: { mount: string; sizeKb: number; availKb: number; usedPct: number }[]
  mem: { totalKb: number; availKb: number }
  /** The host's clock minus ours, ms (ours taken as the script starts: off by at most one round trip). */
  clockSkewMs: number
  /** Processes running a deleted (replaced) binary or library: "comm (pid): path". */
  stale: string[]
  /** Last line of the deploy's audit log (AUDIT_LOG) with result=ok, or undefined. */
  lastDeploy?: string
  iroh?: { version: string; sha256: string }
}

/** The read-only script (templates/shell/host-probe.sh), with the units and paths it asks about. */
function hostProbeScript(server: ServerDescription): string {
  return `HOST_UNITS='${server.units.join(' ')}'\nHOST_DISK_PATHS='${server.diskPaths.join(' ')}'\n${hostShell('host-probe.sh')}`
}

function sections(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] | undefined
  for (const line of stdout.split('\n')) {
    const m = /^@(\w+)$/.exec(line)
    if (m) {
      current = []
      out.set(m[1] as string, current)
    } else if (current && line.trim() !== '') current.push(line)
  }
  return out
}

/** The script's hex (od -tx1) of a name or path, as text; a name from /proc/PID/comm without its newline. */
const unhex = (hex = ''): string => (/^(?:[0-9a-f]{2})*$/.test(hex) ? Buffer.from(hex, 'hex').toString('utf8') : '')
const commOf = (hex?: string): string => unhex(hex).replace(/\n$/, '')

export function parseHostFacts(stdout: string, localMs: number): HostFacts {
  const s = sections(stdout)
  const units: HostFacts['units'] = {}
  for (const line of s.get('units') ?? []) {
    const [name, load = '', active = ''] = line.split(/\s+/)
    if (name) units[name] = [load, active]
  }
  // "pid unit name" (hex): the processes that hold listening sockets.
  const pids = new Map(
    (s.get('pids') ?? []).map((l) => {
      const [pid = '', unit, comm] = l.split(' ')
      // Instances count as their unit: Debian runs postfix as postfix@-.service.
      return [
        pid,
        {
          unit: unhex(unit)
            .replace(/\.service$/, '')
            .replace(/@.*$/, ''),
          comm: commOf(comm),
        },
      ]
    }),
  )
  // "pid inode": which process holds which socket.
  const holders = new Map<string, string[]>()
  for (const l of s.get('sockets') ?? []) {
    const [pid = '', inode = ''] = l.split(' ')
    holders.set(inode, [...(holders.get(inode) ?? []), pid])
  }
  const uniq = (xs: string[]) => [...new Set(xs.filter(Boolean))]
  // "proto address:port inode"
  const listening = (s.get('listening') ?? []).flatMap((line) => {
    const [proto, address = '', inode = ''] = line.split(' ')
    const port = Number(/:(\d+)$/.exec(address)?.[1])
    const who = (holders.get(inode) ?? []).map((pid) => pids.get(pid) ?? { unit: '', comm: '' })
    return proto && Number.isInteger(port)
      ? [{ proto, port, programs: uniq(who.map((w) => w.comm)), units: uniq(who.map((w) => w.unit)) }]
      : []
  })
  const seen = new Set<string>()
  const disks = (s.get('disk') ?? []).flatMap((line) => {
    const f = line.trim().split(/\s+/)
    const mount = f[5]
    if (!mount || seen.has(mount)) return []
    seen.add(mount)
    return [{ mount, sizeKb: Number(f[1]), availKb: Number(f[3]), usedPct: Number((f[4] ?? '').replace('%', '')) }]
  })
  const memValue = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+)`).exec((s.get('mem') ?? []).find((l) => l.startsWith(key)) ?? '')?.[1] ?? 0)
  const clockNs = (s.get('clock') ?? [])[0]
  const iroh = s.get('iroh') ?? []
  const lastDeploy = (s.get('deploy') ?? [])[0]
  return {
    units,
    failed: s.get('failed') ?? [],
    listening,
    disks,
    mem: { totalKb: memValue('MemTotal'), availKb: memValue('MemAvailable') },
    clockSkewMs: clockNs ? Math.round(Number(BigInt(clockNs) / 1_000_000n) - localMs) : Number.NaN,
    // "pid name path" (name and path in hex)
    stale: (s.get('stale') ?? []).map((l) => {
      const [pid, comm, path] = l.split(' ')
      return `${commOf(comm)} (${pid}): ${unhex(path)}`
    }),
    ...(lastDeploy ? { lastDeploy } : {}),
    ...(iroh.length >= 2 ? { iroh: { version: iroh[0] as string, sha256: iroh[1] as string } } : {}),
  }
}

/** The facts of one host, gathered once per doctor run, however many checks ask. */
export class HostProbe {
  private gathered?: Promise<HostFacts>
  constructor(
    /** user@host[:port], for details. */
    readonly label: string,
    private readonly connect: () => Promise<HostExec>,
  ) {}

  /** The facts of the units and paths of `server` (what the config deploys: src/server/services.ts). */
  facts(server: ServerDescription): Promise<HostFacts> {
    this.gathered ??= (async () => {
      const shell = await this.connect()
      const before = Date.now()
      const r = await shell.exec(hostProbeScript(server))
      if (!r.stdout.includes('@clock')) {
        throw new Error(`the read-only facts script failed (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}`)
      }
      return parseHostFacts(r.stdout, before)
    })()
    return this.gathered
  }
}
