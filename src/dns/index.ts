/**
 * `chatmail dns` as a library: the zone for a domain (and its config), what the host tells about
 * itself over SSH (its DKIM public key and addresses), and the check against the authoritative
 * servers. The command, the doctor's dns group and the deploy preflight all call these.
 */
import { createPublicKey } from 'node:crypto'
import { isIP } from 'node:net'
import { cannotRun, usageError } from '../lib/errors.js'
import { checkZone, type RecordFinding, zoneStatus } from './check.js'
import { dkimPublicKeyCommand, parseDkimPublicKey } from './dkim-key.js'
import type { OpendkimProbe } from './opendkim-probe.js'
import type { NameServer } from './query.js'
import { AuthoritativeResolver } from './resolver.js'
import { specialUseName } from './special-use.js'
import type { DkimPublicKey, ZoneEntry } from './zone.js'

export { type RecordFinding, zoneStatus } from './check.js'
export { type OpendkimProbe, opendkimProbeCommand, parseOpendkimProbe } from './opendkim-probe.js'
export { type NameServer, nameServerFlag, parseNameServer } from './query.js'
export { AuthoritativeResolver } from './resolver.js'
export { specialUseName } from './special-use.js'
export { buildZone, certificateNames, renderZone, type ZoneEntry, type ZoneInput } from './zone.js'
export { type ZoneSources, zoneInputFor } from './zone-input.js'

/** A DKIM public key from a file: PEM (public or private key: only the public half is used) or base64 DER. */
export function dkimKeyFromText(text: string, file: string): DkimPublicKey {
  const t = text.trim()
  try {
    const key = t.startsWith('-----')
      ? createPublicKey(t)
      : createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' })
    const parsed = parseDkimPublicKey((key.export({ format: 'der', type: 'spki' }) as Buffer).toString('base64'))
    if (parsed) return parsed
  } catch {
    // reported below
  }
  throw usageError(`${file} holds no public key (PEM, or base64 of DER)`, 'e.g. openssl pkey -in KEY -pubout')
}

/** Public addresses first: private ones only when the host has no other (a test host, a LAN). */
export function publicAddresses(addresses: readonly string[]): string[] {
  const isPrivate = (a: string) =>
    /^(10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(a) ||
    /^(fe80:|fc|fd|::1$)/i.test(a)
  const pub = addresses.filter((a) => !isPrivate(a))
  return pub.length ? pub : [...addresses]
}

/** One command on the host: its DKIM public key (if any) and its global addresses. */
export const HOST_DNS_FACTS = `k=$( (${dkimPublicKeyCommand()}) 2>/dev/null || true); printf 'dkim %s\\n' "$k"; ip -o addr show scope global 2>/dev/null | while read -r _ _ _ a _; do printf 'addr %s\\n' "\${a%/*}"; done`

export function parseHostDnsFacts(stdout: string): { dkim?: DkimPublicKey; addresses: string[] } {
  let dkim: DkimPublicKey | undefined
  const addresses: string[] = []
  for (const line of stdout.split('\n')) {
    const [kind, value = ''] = line.trim().split(/\s+/, 2)
    if (kind === 'dkim' && value) dkim = parseDkimPublicKey(value)
    if (kind === 'addr' && isIP(value)) addresses.push(value)
  }
  return { ...(dkim ? { dkim } : {}), addresses }
}

export interface ZoneCheck {
  status: 'ok' | 'warn' | 'fail' | 'error'
  domain: string
  /** The servers asked (the zone's NS, or --nameserver). */
  nameservers: string[]
  records: RecordFinding[]
  /** With SSH to our host: its opendkim's own lookup of the DKIM record (src/dns/opendkim-probe.ts). */
  opendkim?: OpendkimProbe
}

/**
 * Checks the zone at the domain's authoritative servers (or `nameserver`). Throws a could-not-run
 * error when no server can be found or none answers any question.
 */
export async function checkDomain(
  entries: readonly ZoneEntry[],
  domain: string,
  o: { nameserver?: NameServer; timeoutMs?: number; signal?: AbortSignal; resolver?: AuthoritativeResolver } = {},
): Promise<ZoneCheck> {
  const resolver =
    o.resolver ??
    new AuthoritativeResolver({
      ...(o.nameserver ? { nameserver: o.nameserver } : {}),
      ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    })
  if (!o.nameserver && !o.resolver && specialUseName(domain)) {
    throw cannotRun(
      `${domain} is a special-use name: no public nameserver answers for it`,
      'name the server that serves it with --nameserver HOST[:PORT]',
    )
  }
  let nameservers: string[]
  try {
    const { zone, servers } = await resolver.serversFor(domain)
    nameservers = servers.map((s) => (s.name ? `${s.name} ${s.address}` : `${s.address}:${s.port}`))
    if (zone) nameservers = nameservers.map((n) => `${n} (zone ${zone})`)
  } catch (err) {
    throw cannotRun(
      (err as Error).message,
      'name a server that is authoritative for the zone with --nameserver HOST[:PORT]',
    )
  }
  // One question first: a server that does not answer at all is one error, not one per record.
  try {
    await resolver.lookup(domain, 'A')
  } catch (err) {
    throw cannotRun((err as Error).message, 'is the nameserver reachable, and authoritative for the domain?')
  }
  const records = await checkZone(entries, domain, resolver.lookup)
  const judged = zoneStatus(records.filter((r) => r.status !== 'error'))
  const status = judged === 'fail' || !records.some((r) => r.status === 'error') ? judged : 'error'
  return { status, domain, nameservers, records }
}
