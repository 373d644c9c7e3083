/**
 * The DNS zone a chatmail server needs: which records, with which values. Pure: no I/O.
 * `chatmail dns` prints it (BIND syntax), `chatmail dns --check`, the doctor's dns group and the
 * deploy preflight compare the published records with it (check.ts).
 */

export type RrType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'SRV' | 'CAA'

/**
 * One requirement of the zone: a name and type, and the values it must hold. Required ones are
 * what mail between servers needs (a missing one fails the check); recommended ones help clients
 * and other servers (a missing one warns).
 */
export interface ZoneEntry {
  /** Stable id: a, aaaa, mx, spf, dkim, dmarc, mta-sts, mta-sts.name, srv.imaps, caa, tls-rpt … */
  id: string
  /** Fully qualified, lower case, without the trailing dot. */
  name: string
  type: RrType
  /**
   * Values in presentation form without the owner (`10 chat.example.org.`, a TXT's text unquoted).
   * Empty when the value cannot be known here (addresses without --address and no host to ask):
   * the check then asks only that the name has such records.
   */
  values: string[]
  level: 'required' | 'recommended'
  /** What the record is for, for people. */
  purpose: string
}

export interface DkimPublicKey {
  /** The selector: the record lives at SELECTOR._domainkey.DOMAIN. */
  selector: string
  /** The public key, base64 of its DER SubjectPublicKeyInfo (what goes after p=). */
  publicKey: string
  /** The key type for k= (default rsa). */
  keyType?: 'rsa' | 'ed25519'
}

export interface ZoneInput {
  domain: string
  /** The server's public addresses; empty = unknown (the check then accepts any). */
  ipv4: string[]
  ipv6: string[]
  /** The DKIM key, when it could be read from the host; otherwise the record's value is unknown. */
  dkim?: DkimPublicKey
  /** The selector when the key itself is unknown. */
  dkimSelector: string
  /** Publish MTA-STS (needs a certificate that others trust on mta-sts.DOMAIN: acme or manual TLS). */
  mtaSts: boolean
  /** The policy id of `_mta-sts` (changes whenever the policy does); unknown = any valid id is accepted. */
  mtaStsId?: string
  /** The CA domain for CAA (`letsencrypt.org`); none = no CAA record (unknown CA, or not ACME). */
  caaIssuer?: string
  /** Where TLS reports go (an e-mail address). */
  tlsRptAddress?: string
  imapPort: number
  ttl?: number
}

export const DEFAULT_TTL = 3600
export const SPF_VALUE = 'v=spf1 a ~all'
export const DMARC_VALUE = 'v=DMARC1; p=reject; adkim=s; aspf=s'

/** The CA a CAA record must allow for an ACME directory; undefined when it is not one we know. */
export function caaIssuerFor(acmeDirectory: string): string | undefined {
  let host: string
  try {
    host = new URL(acmeDirectory).hostname.toLowerCase()
  } catch {
    return undefined
  }
  const known: [RegExp, string][] = [
    [/(^|\.)letsencrypt\.org$/, 'letsencrypt.org'],
    [/(^|\.)zerossl\.com$/, 'sectigo.com'],
    [/(^|\.)buypass\.(com|no)$/, 'buypass.com'],
    [/(^|\.)pki\.goog$/, 'pki.goog'],
    [/(^|\.)ssl\.com$/, 'ssl.com'],
  ]
  return known.find(([re]) => re.test(host))?.[1]
}

export function dkimRecordValue(key: DkimPublicKey): string {
  return `v=DKIM1; k=${key.keyType ?? 'rsa'}; p=${key.publicKey}; s=email; t=s`
}

/** An MTA-STS policy id when none is given: the time, as cmdeploy does (YYYYMMDDHHMM). */
export function mtaStsIdAt(date: Date): string {
  return date.toISOString().replace(/[-T:]/g, '').slice(0, 12)
}

/** Every record the server needs, in the order they are printed. */
export function buildZone(input: ZoneInput, now: Date = new Date()): ZoneEntry[] {
  const d = input.domain.toLowerCase().replace(/\.$/, '')
  const fq = `${d}.`
  const entries: ZoneEntry[] = []
  const add = (e: ZoneEntry) => entries.push(e)
  const unknownAddresses = input.ipv4.length === 0 && input.ipv6.length === 0
  // Addresses: when none are known, one entry that asks for A or AAAA (values unknown).
  if (unknownAddresses || input.ipv4.length > 0) {
    add({ id: 'a', name: d, type: 'A', values: [...input.ipv4], level: 'required', purpose: 'the server (IPv4)' })
  }
  if (input.ipv6.length > 0) {
    add({ id: 'aaaa', name: d, type: 'AAAA', values: [...input.ipv6], level: 'required', purpose: 'the server (IPv6)' })
  }
  add({ id: 'mx', name: d, type: 'MX', values: [`10 ${fq}`], level: 'required', purpose: 'mail for the domain' })
  add({ id: 'spf', name: d, type: 'TXT', values: [SPF_VALUE], level: 'required', purpose: 'SPF: who sends its mail' })
  add({
    id: 'dkim',
    name: `${input.dkim?.selector ?? input.dkimSelector}._domainkey.${d}`,
    type: 'TXT',
    values: input.dkim ? [dkimRecordValue(input.dkim)] : [],
    level: 'required',
    purpose: 'DKIM: the key its outgoing mail is signed with',
  })
  add({
    id: 'dmarc',
    name: `_dmarc.${d}`,
    type: 'TXT',
    values: [DMARC_VALUE],
    level: 'required',
    purpose: 'DMARC: refuse mail that claims the domain without DKIM/SPF',
  })
  if (input.mtaSts) {
    add({
      id: 'mta-sts',
      name: `_mta-sts.${d}`,
      type: 'TXT',
      values: [`v=STSv1; id=${input.mtaStsId ?? mtaStsIdAt(now)}`],
      level: 'required',
      purpose: 'MTA-STS: other servers must deliver over verified TLS',
    })
    add({
      id: 'mta-sts.name',
      name: `mta-sts.${d}`,
      type: 'CNAME',
      values: [fq],
      level: 'required',
      purpose: 'MTA-STS: where the policy is served (https)',
    })
  }
  if (input.tlsRptAddress) {
    add({
      id: 'tls-rpt',
      name: `_smtp._tls.${d}`,
      type: 'TXT',
      values: [`v=TLSRPTv1; rua=mailto:${input.tlsRptAddress}`],
      level: 'recommended',
      purpose: 'TLS-RPT: where other servers report TLS failures',
    })
  }
  const srv = (id: string, service: string, port: number, what: string) =>
    add({
      id: `srv.${id}`,
      name: `_${service}._tcp.${d}`,
      type: 'SRV',
      values: [`0 1 ${port} ${fq}`],
      level: 'recommended',
      purpose: `${what} (RFC 6186)`,
    })
  srv('imaps', 'imaps', input.imapPort === 143 ? 993 : input.imapPort, 'IMAP over TLS')
  srv('imap', 'imap', 143, 'IMAP with STARTTLS')
  srv('submissions', 'submissions', 465, 'submission over TLS')
  srv('submission', 'submission', 587, 'submission with STARTTLS')
  if (input.caaIssuer) {
    add({
      id: 'caa',
      name: d,
      type: 'CAA',
      values: [`0 issue "${input.caaIssuer}"`],
      level: 'recommended',
      purpose: 'CAA: only this CA may issue its certificates',
    })
  }
  return entries
}

/** The names a certificate must cover for the zone: the domain and every name that points at the server. */
export function certificateNames(entries: readonly ZoneEntry[], domain: string): string[] {
  const names = new Set([domain.toLowerCase()])
  for (const e of entries) if (e.type === 'CNAME') names.add(e.name)
  return [...names]
}

/** A TXT value as BIND quoted strings: 255 bytes at most per string, `"` and `\` escaped. */
export function txtStrings(value: string): string[] {
  const parts: string[] = []
  for (let i = 0; i < value.length || i === 0; i += 255) parts.push(value.slice(i, i + 255))
  return parts.map((p) => `"${p.replace(/[\\"]/g, (c) => `\\${c}`)}"`)
}

/** The rdata of an entry's value as it goes into a zone file. */
export function rdata(type: RrType, value: string): string {
  if (type !== 'TXT') return value
  const strings = txtStrings(value)
  return strings.length === 1 ? (strings[0] as string) : `( ${strings.join('\n    ')} )`
}

/**
 * The zone as BIND master-file lines (relative to no $ORIGIN: every owner fully qualified), with a
 * comment per record. Unknown values are written as comments saying what is missing.
 */
export function renderZone(entries: readonly ZoneEntry[], o: { ttl?: number; header?: string[] } = {}): string {
  const ttl = o.ttl ?? DEFAULT_TTL
  const lines: string[] = (o.header ?? []).map((h) => `; ${h}`)
  for (const e of entries) {
    lines.push(`; ${e.purpose}${e.level === 'recommended' ? ' (recommended)' : ''}`)
    if (e.values.length === 0) {
      lines.push(`; ${e.name}. ${ttl} IN ${e.type} <${unknownWhat(e)}>`)
      continue
    }
    for (const v of e.values) lines.push(`${e.name}. ${ttl} IN ${e.type} ${rdata(e.type, v)}`)
  }
  return `${lines.join('\n')}\n`
}

function unknownWhat(e: ZoneEntry): string {
  if (e.id === 'dkim') return 'the DKIM key: deploy the server first, then run chatmail dns again'
  if (e.type === 'A') return 'the server address: pass --address IP'
  return 'unknown'
}
