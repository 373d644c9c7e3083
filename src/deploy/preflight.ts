import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { Facts } from './facts.js'
import type { PortClaim } from './resources.js'

/** Checks made before any change; each problem stops the deploy. */
export interface PreflightProblem {
  check: 'os' | 'arch' | 'root' | 'disk' | 'port' | 'dns'
  message: string
  hint?: string
}

export interface PreflightOptions {
  ports: PortClaim[]
  minFreeMb?: number
}

/** The Debian releases a deploy supports (VERSION_ID → codename); each has its own templates where needed. */
export const SUPPORTED_DEBIAN: Readonly<Record<string, string>> = { '12': 'bookworm', '13': 'trixie' }

const SUPPORTED_TEXT = Object.entries(SUPPORTED_DEBIAN)
  .map(([v, c]) => `Debian ${v} (${c})`)
  .join(' or ')

const OS_NAMES: Record<string, string> = { debian: 'Debian', ubuntu: 'Ubuntu', raspbian: 'Raspbian' }

/**
 * The system /etc/os-release describes, for messages: `Debian 13 (trixie)`, `Ubuntu 24.04 (noble)`,
 * `Debian testing/unstable (forky)` (testing and sid have no VERSION_ID).
 */
export function describeOs(os: Facts['os']): string {
  if (!os.id) return 'an unknown system (no /etc/os-release)'
  const name = OS_NAMES[os.id] ?? os.id
  const version = os.versionId || (os.id === 'debian' ? 'testing/unstable' : '')
  return [name, version, os.codename ? `(${os.codename})` : ''].filter(Boolean).join(' ')
}

/** The supported Debian release the host runs ('12', '13'), or undefined. */
export function supportedRelease(os: Facts['os']): string | undefined {
  return os.id === 'debian' && os.versionId in SUPPORTED_DEBIAN ? os.versionId : undefined
}

/** The host-side checks, from facts alone. Pure. */
export function preflightFacts(facts: Facts, opts: PreflightOptions): PreflightProblem[] {
  const problems: PreflightProblem[] = []
  if (supportedRelease(facts.os) === undefined) {
    problems.push({
      check: 'os',
      message: `the host runs ${describeOs(facts.os)}; chatmail deploys to ${SUPPORTED_TEXT} only`,
      hint: `install ${SUPPORTED_TEXT} on the host`,
    })
  }
  if (facts.arch !== 'x86_64' && facts.arch !== 'aarch64') {
    problems.push({
      check: 'arch',
      message: `the host's architecture ${facts.arch || '(unknown)'} is not supported`,
      hint: 'x86_64 and aarch64 are supported',
    })
  }
  if (facts.uid !== 0) {
    problems.push({
      check: 'root',
      message: `commands on the host run as uid ${facts.uid}, not root`,
      hint: 'log in as root or allow passwordless sudo',
    })
  }
  const minFreeMb = opts.minFreeMb ?? 1024
  const freeMb = Math.floor(facts.diskFreeKb / 1024)
  if (freeMb < minFreeMb) {
    problems.push({
      check: 'disk',
      message: `only ${freeMb} MB free on / (at least ${minFreeMb} MB needed)`,
      hint: 'free some disk space or grow the disk',
    })
  }
  for (const claim of opts.ports) {
    const holders = facts.listeners.filter((l) => l.port === claim.port && l.proto === claim.proto)
    const foreign = [
      ...new Set(holders.flatMap((l) => (l.processes.length ? l.processes : ['an unknown process']))),
    ].filter((p) => !claim.owners.includes(p))
    if (foreign.length > 0) {
      problems.push({
        check: 'port',
        message: `port ${claim.port}/${claim.proto} is held by ${foreign.join(', ')} (expected ${claim.owners.join(' or ') || 'nothing'})`,
        hint: `stop and disable ${foreign.join(', ')} on the host (systemctl disable --now …), then deploy again`,
      })
    }
  }
  return problems
}

export type Resolver = (name: string) => Promise<string[]>

const systemResolver: Resolver = async (name) => (await lookup(name, { all: true })).map((a) => a.address)

/**
 * The domain's A and AAAA records as its authoritative nameservers publish them (the code of
 * `chatmail dns --check`: a record just set is seen at once, not after a cache's TTL). Special-use
 * names (.test, .localhost) have no public nameservers: the system resolver answers for them. An IP
 * address (an IP-only server) resolves to itself.
 */
export const authoritativeAddresses: Resolver = async (name) => {
  // an IP-only server: the address is its own answer (no nameserver to ask)
  if (isIP(name)) return [name]
  const { specialUseName } = await import('../dns/special-use.js')
  if (specialUseName(name)) return systemResolver(name)
  const { AuthoritativeResolver } = await import('../dns/resolver.js')
  const r = new AuthoritativeResolver({ timeoutMs: 3000 })
  const [a, aaaa] = await Promise.all([r.lookup(name, 'A'), r.lookup(name, 'AAAA')])
  const addresses = [...a.records, ...aaaa.records].map((x) => x.value)
  if (addresses.length === 0) throw new Error(`no A or AAAA record at the authoritative nameservers (${a.server})`)
  return addresses
}

/**
 * The domain must resolve to the host: to one of its own addresses, or to the address SSH reached
 * (a host behind NAT sees only its private address). The domain is asked at its authoritative
 * nameservers; the SSH host name as SSH found it (the system resolver). Skippable (--skip-dns-check).
 */
export async function preflightDns(
  domain: string,
  facts: Facts,
  sshHost: string,
  resolve: Resolver = authoritativeAddresses,
  resolveSshHost: Resolver = resolve === authoritativeAddresses ? systemResolver : resolve,
): Promise<PreflightProblem[]> {
  let addresses: string[]
  try {
    addresses = await resolve(domain)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    return [
      {
        check: 'dns',
        message: `${domain} does not resolve (${code})`,
        hint: `add an A record for ${domain} pointing at the host, or pass --skip-dns-check`,
      },
    ]
  }
  const hostAddresses = new Set([...facts.addresses, ...(isIP(sshHost) ? [sshHost] : [])])
  if (!isIP(sshHost)) {
    try {
      for (const a of await resolveSshHost(sshHost)) hostAddresses.add(a)
    } catch {
      // the SSH connection worked, so the name resolved once; ignore a flaky second lookup
    }
  }
  if (addresses.some((a) => hostAddresses.has(a))) return []
  return [
    {
      check: 'dns',
      message: `${domain} resolves to ${addresses.join(', ')}, which is not this host (${[...hostAddresses].join(', ')})`,
      hint: 'fix the A/AAAA record (it may take the TTL to propagate), or pass --skip-dns-check',
    },
  ]
}
