/**
 * Host facts for the host checks, gathered over ONE SSH connection with ONE read-only script
 * (systemctl, ss, df, /proc, date, sha256sum: nothing is written on the host). The caller owns
 * the connection: `doctor --ssh` opens it, `deploy host` lends its own.
 */

export interface HostExec {
  exec(command: string): Promise<{ code: number; stdout: string; stderr: string }>
}

/** The units of the dovecot profile, in report order. */
export const HOST_UNITS = [
  'dovecot',
  'postfix',
  'coturn',
  'nginx',
  'iroh-relay',
  'chatmail-metadata',
  'chatmail-filter',
] as const

/** The paths whose file systems must not fill up: the system, mail, logs. */
export const HOST_DISK_PATHS = ['/', '/home/vmail', '/var/log'] as const

export interface HostFacts {
  /** unit → [LoadState, ActiveState], e.g. ['loaded', 'active'] or ['not-found', 'inactive']. */
  units: Record<string, [string, string]>
  /** Every failed unit on the host. */
  failed: string[]
  /** Listening sockets: proto (tcp/udp), port, owning programs and the systemd units they run in. */
  listening: { proto: string; port: number; programs: string[]; units: string[] }[]
  /** Mounts of HOST_DISK_PATHS: mount point, size and available KiB, used percent. */
  disks: { mount: string; sizeKb: number; availKb: number; usedPct: number }[]
  mem: { totalKb: number; availKb: number }
  /** The host's clock minus ours, ms (ours taken as the script starts: off by at most one round trip). */
  clockSkewMs: number
  /** Processes running a deleted (replaced) binary or library: "comm (pid): path". */
  stale: string[]
  /** Last line of /var/log/chatmail-deploy.log with result=ok, or undefined. */
  lastDeploy?: string
  iroh?: { version: string; sha256: string }
}

const SCRIPT = `
echo @clock
date +%s%N
export LC_ALL=C
echo @units
for u in ${HOST_UNITS.join(' ')}; do
  printf '%s %s %s\\n' "$u" "$(systemctl show -p LoadState --value "$u.service" 2>/dev/null)" "$(systemctl show -p ActiveState --value "$u.service" 2>/dev/null)"
done
echo @failed
systemctl list-units --state=failed --no-legend --plain 2>/dev/null | awk '{print $1}'
echo @listening
ss -Htulnp 2>/dev/null
echo @pids
for pid in $(ss -Htulnp 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
  printf '%s %s\n' "$pid" "$(grep -o '[^/]*.service' "/proc/$pid/cgroup" 2>/dev/null | tail -n 1)"
done
echo @disk
for p in ${HOST_DISK_PATHS.join(' ')}; do [ -e "$p" ] && df -P -k "$p" 2>/dev/null | tail -n +2; done
echo @mem
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
echo @stale
for d in /proc/[0-9]*; do
  pid=\${d#/proc/}
  exe=$(readlink "$d/exe" 2>/dev/null) || continue
  comm=$(cat "$d/comm" 2>/dev/null)
  case "$exe" in *' (deleted)') echo "$comm ($pid): \${exe% (deleted)}"; continue;; esac
  lib=$(grep -m1 -E '\\.so[.0-9]* \\(deleted\\)$' "$d/maps" 2>/dev/null | awk '{print $6}')
  [ -n "$lib" ] && echo "$comm ($pid): $lib"
done
echo @deploy
grep ' result=ok ' /var/log/chatmail-deploy.log 2>/dev/null | tail -n 1
echo @iroh
if [ -x /usr/local/bin/iroh-relay ]; then
  v=$(/usr/local/bin/iroh-relay --version 2>/dev/null | head -n 1)
  printf '%s\\n%s\\n' "\${v:-unknown}" "$(sha256sum /usr/local/bin/iroh-relay | cut -c1-64)"
fi
`

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

/** `users:(("nginx",pid=1,fd=6),("nginx",pid=2,fd=6))` → [['nginx', '1'], ['nginx', '2']] */
function owners(text: string): [string, string][] {
  return [...text.matchAll(/\("([^"]+)",pid=(\d+)/g)].map((m) => [m[1] as string, m[2] as string])
}

export function parseHostFacts(stdout: string, localMs: number): HostFacts {
  const s = sections(stdout)
  const units: HostFacts['units'] = {}
  for (const line of s.get('units') ?? []) {
    const [name, load = '', active = ''] = line.split(/\s+/)
    if (name) units[name] = [load, active]
  }
  const unitOf = new Map(
    (s.get('pids') ?? []).map((l) => {
      const [pid = '', unit = ''] = l.split(/\s+/)
      // Instances count as their unit: Debian runs postfix as postfix@-.service.
      return [pid, unit.replace(/\.service$/, '').replace(/@.*$/, '')]
    }),
  )
  const listening = (s.get('listening') ?? []).flatMap((line) => {
    const f = line.trim().split(/\s+/)
    const port = Number(/:(\d+)$/.exec(f[4] ?? '')?.[1])
    const who = owners(f.slice(6).join(' '))
    const uniq = (xs: string[]) => [...new Set(xs.filter(Boolean))]
    return f[0] && Number.isInteger(port)
      ? [
          {
            proto: f[0],
            port,
            programs: uniq(who.map(([p]) => p)),
            units: uniq(who.map(([, pid]) => unitOf.get(pid) ?? '')),
          },
        ]
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
    stale: s.get('stale') ?? [],
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

  facts(): Promise<HostFacts> {
    this.gathered ??= (async () => {
      const shell = await this.connect()
      const before = Date.now()
      const r = await shell.exec(SCRIPT)
      if (!r.stdout.includes('@clock')) {
        throw new Error(`the read-only facts script failed (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}`)
      }
      return parseHostFacts(r.stdout, before)
    })()
    return this.gathered
  }
}
