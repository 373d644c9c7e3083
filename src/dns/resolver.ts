/**
 * Asks a domain's AUTHORITATIVE nameservers, not the system resolver's cache: the zone's NS records
 * (found through the system resolver, as the rest of the world finds them), then each question to
 * those servers directly, without recursion. A hidden primary is never asked (it is not in NS);
 * `--nameserver` names a server to ask instead. CNAMEs are followed, also into other zones.
 */
import { Resolver as SystemResolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import {
  DnsQueryError,
  type DnsResponse,
  describeServer,
  type NameServer,
  normalName,
  query,
  type Rr,
} from './query.js'
import type { RrType } from './zone.js'

export interface RrsetAnswer {
  /** The name asked. */
  name: string
  type: RrType
  /** ok: records found; nodata: the name exists without such records; nxdomain: the name does not exist. */
  status: 'ok' | 'nodata' | 'nxdomain'
  /** The records of `type` at the end of the CNAME chain. */
  records: Rr[]
  /** The CNAMEs followed from `name`, in order. */
  cnames: { name: string; target: string }[]
  /** Who answered the last question. */
  server: string
  /** The answer had no AA flag (a recursive --nameserver). */
  notAuthoritative?: boolean
}

/** What the checks need: one RRset, CNAMEs followed. Throws DnsQueryError when no server answers. */
export type RrsetLookup = (name: string, type: RrType) => Promise<RrsetAnswer>

/** What the system resolver is asked: the zone's NS names and their addresses. */
export interface SystemLookups {
  resolveNs(name: string): Promise<string[]>
  resolve4(name: string): Promise<string[]>
  resolve6(name: string): Promise<string[]>
}

export interface AuthoritativeOptions {
  /** Ask this server for everything (with recursion desired, so a split-horizon resolver also answers). */
  nameserver?: NameServer
  timeoutMs?: number
  signal?: AbortSignal
  /** How NS names and their addresses are found (default: the system resolver). Tests pass their own. */
  system?: SystemLookups
  /** The port of the nameservers found (53; tests serve elsewhere). */
  port?: number
}

const MAX_CNAMES = 8
const MAX_REFERRALS = 4

export class AuthoritativeResolver {
  private readonly zones = new Map<string, Promise<{ zone: string; servers: NameServer[] }>>()
  private readonly system: SystemLookups

  constructor(private readonly o: AuthoritativeOptions = {}) {
    this.system = o.system ?? new SystemResolver({ timeout: o.timeoutMs ?? 3000, tries: 2 })
  }

  /** The zone a name is in and its nameservers' addresses (cached per zone). */
  async serversFor(name: string): Promise<{ zone: string; servers: NameServer[] }> {
    if (this.o.nameserver) return { zone: '', servers: [this.o.nameserver] }
    const labels = normalName(name).split('.')
    for (let i = 0; i < labels.length - 1; i++) {
      const candidate = labels.slice(i).join('.')
      const cached = this.zones.get(candidate)
      if (cached) return cached
      let ns: string[] = []
      try {
        ns = await this.system.resolveNs(candidate)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'ENODATA' && code !== 'ENOTFOUND') {
          throw new DnsQueryError(`cannot find the nameservers of ${candidate}: ${code ?? (err as Error).message}`)
        }
      }
      if (ns.length === 0) continue
      const found = this.addressesOf(ns).then((servers) => {
        if (servers.length === 0)
          throw new DnsQueryError(`the nameservers of ${candidate} (${ns.join(', ')}) have no address`)
        return { zone: candidate, servers }
      })
      this.zones.set(candidate, found)
      return found
    }
    throw new DnsQueryError(
      `no nameservers found for ${name} (is the domain registered? --nameserver asks a server you name)`,
    )
  }

  private async addressesOf(names: string[], glue: Rr[] = []): Promise<NameServer[]> {
    const servers: NameServer[] = []
    for (const ns of [...names].sort()) {
      const fromGlue = glue.filter((r) => r.name === normalName(ns) && (r.type === 'A' || r.type === 'AAAA'))
      let addresses = fromGlue.map((r) => r.value)
      if (addresses.length === 0) {
        const [v4, v6] = await Promise.all([
          this.system.resolve4(ns).catch(() => [] as string[]),
          this.system.resolve6(ns).catch(() => [] as string[]),
        ])
        addresses = [...v4, ...v6]
      }
      for (const address of addresses) {
        if (isIP(address)) servers.push({ address, port: this.o.port ?? 53, name: normalName(ns) })
      }
    }
    return servers
  }

  /** One question, to the name's zone's servers in turn until one answers authoritatively; referrals followed. */
  async ask(name: string, type: RrType): Promise<{ response: DnsResponse; server: NameServer }> {
    let { servers } = await this.serversFor(name)
    const explicit = Boolean(this.o.nameserver)
    for (let hop = 0; hop <= MAX_REFERRALS; hop++) {
      const problems: string[] = []
      let referral: { ns: string[]; glue: Rr[] } | undefined
      for (const server of servers) {
        let response: DnsResponse
        try {
          response = await query(server, name, type, {
            recursion: explicit,
            timeoutMs: this.o.timeoutMs ?? 3000,
            ...(this.o.signal ? { signal: this.o.signal } : {}),
          })
        } catch (err) {
          problems.push((err as Error).message)
          continue
        }
        if (response.rcode !== 'NOERROR' && response.rcode !== 'NXDOMAIN') {
          problems.push(`${describeServer(server)} answered ${response.rcode}`)
          continue
        }
        if (response.authoritative || explicit) return { response, server }
        const ns = response.authorities.filter((r) => r.type === 'NS')
        if (ns.length > 0 && response.answers.length === 0) {
          referral = { ns: ns.map((r) => r.value), glue: response.additionals }
          break
        }
        problems.push(`${describeServer(server)} is not authoritative for ${name} (lame delegation)`)
      }
      if (!referral) throw new DnsQueryError(`no answer for ${name} ${type}: ${problems.join('; ')}`)
      servers = await this.addressesOf(referral.ns, referral.glue)
    }
    throw new DnsQueryError(`too many referrals for ${name}`)
  }

  /** The RRset of `type` at `name`, following CNAMEs (each target asked at its own zone's servers). */
  lookup: RrsetLookup = async (name, type) => {
    const start = normalName(name)
    const cnames: { name: string; target: string }[] = []
    let current = start
    for (;;) {
      const { response, server } = await this.ask(current, type)
      const answers = response.answers
      // Follow the CNAME chain inside this answer first (a server includes in-zone targets).
      let owner = current
      for (;;) {
        const c = type === 'CNAME' ? undefined : answers.find((r) => r.type === 'CNAME' && r.name === owner)
        if (!c) break
        if (cnames.length >= MAX_CNAMES || cnames.some((x) => x.name === c.value) || c.value === start) {
          throw new DnsQueryError(`${start} has a CNAME loop or a chain longer than ${MAX_CNAMES}`)
        }
        cnames.push({ name: owner, target: c.value })
        owner = c.value
      }
      const records = answers.filter((r) => r.type === type && r.name === owner)
      const base = {
        name: start,
        type,
        cnames,
        server: describeServer(server),
        ...(response.authoritative ? {} : { notAuthoritative: true }),
      }
      if (records.length > 0) return { ...base, status: 'ok', records }
      // A chain whose target is outside the server's zones ends without the target's records and
      // without the target zone's SOA: ask again for the target (at its own zone's servers).
      const targetInZone = response.authorities.some((r) => r.type === 'SOA' && inZone(owner, r.name))
      if (owner !== current && !targetInZone) {
        current = owner
        continue
      }
      return { ...base, status: response.rcode === 'NXDOMAIN' ? 'nxdomain' : 'nodata', records: [] }
    }
  }
}

/** Whether `name` is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
  const n = normalName(name)
  const z = normalName(zone)
  return z === '' || n === z || n.endsWith(`.${z}`)
}
