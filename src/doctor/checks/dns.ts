/**
 * The dns group: the records of `chatmail dns --check`, asked once at the domain's authoritative
 * nameservers (or --nameserver) and judged per check, plus whether the certificate served on
 * HTTPS covers every name the zone publishes.
 *
 * Fair to servers chatmail did not deploy: without a chatmail.toml for the domain, only a missing
 * address or MX fails (mail cannot arrive); the rest warns. Skipped for IP-only servers and for
 * special-use names (.test, .localhost, example.org) unless --nameserver names a server to ask.
 */
import { isIP } from 'node:net'
import type { RecordFinding } from '../../dns/check.js'
import type { ZoneEntry } from '../../dns/zone.js'
import { type CheckContext, type CheckDef, type CheckOutcome, fail, ok, skip, warn } from '../model.js'
import { probeImapTls } from '../tls-probe.js'
import { endpointAddress } from './tls.js'

interface ZoneRun {
  entries: ZoneEntry[]
  records: RecordFinding[]
}

function notApplicable(ctx: CheckContext): string | undefined {
  const o = ctx.options
  if (isIP(o.domain)) return `${o.domain} is an IP-only server: it has no DNS records`
  return undefined
}

async function zoneRun(ctx: CheckContext): Promise<ZoneRun> {
  const o = ctx.options
  // One lookup of the whole zone per doctor run, shared by the group's checks.
  let run = ctx.state.dnsZone as Promise<ZoneRun> | undefined
  if (!run) {
    run = (async () => {
      const dns = await import('../../dns/index.js')
      const input = o.dnsZone ?? dns.zoneInputFor(o.domain, undefined)
      let entries = dns.buildZone(input)
      // The addresses Delta Chat connects to are the IMAP host's.
      if (o.imapHost !== o.domain && !isIP(o.imapHost)) {
        entries = entries.map((e) => (e.id === 'a' || e.id === 'aaaa' ? { ...e, name: o.imapHost.toLowerCase() } : e))
      }
      const result = await dns.checkDomain(entries, o.domain, {
        ...(o.nameserver ? { nameserver: o.nameserver } : {}),
        timeoutMs: Math.max(500, Math.floor(o.timeoutMs / 3)),
      })
      return { entries, records: result.records }
    })()
    ctx.state.dnsZone = run
  }
  return run
}

const specialUse = async (ctx: CheckContext): Promise<string | undefined> => {
  if (ctx.options.nameserver) return undefined
  const { specialUseName } = await import('../../dns/index.js')
  return specialUseName(ctx.options.domain)
    ? `${ctx.options.domain} is a special-use name: no public nameserver answers for it (--nameserver asks one)`
    : undefined
}

/** Which zone entries a check judges. */
const RECORDS: Record<string, (id: string) => boolean> = {
  address: (id) => id === 'a' || id === 'aaaa',
  mx: (id) => id === 'mx',
  spf: (id) => id === 'spf',
  dkim: (id) => id === 'dkim',
  dmarc: (id) => id === 'dmarc',
  'mta-sts': (id) => id === 'mta-sts' || id === 'mta-sts.name',
  'tls-rpt': (id) => id === 'tls-rpt',
  srv: (id) => id.startsWith('srv.'),
  caa: (id) => id === 'caa',
}

/** Records a server cannot receive mail without: their absence fails even on servers chatmail did not deploy. */
const ESSENTIAL: readonly string[] = ['address', 'mx']

function recordCheck(name: string, title: string, notOffered: string): CheckDef {
  return {
    id: `dns.${name}`,
    group: 'dns',
    title,
    async run(ctx) {
      const why = notApplicable(ctx) ?? (await specialUse(ctx))
      if (why) return skip(why)
      let zone: ZoneRun
      try {
        zone = await zoneRun(ctx)
      } catch (err) {
        return fail(
          `the DNS could not be asked: ${(err as Error).message}`,
          'check the nameservers, or pass --nameserver',
        )
      }
      const mine = zone.records.filter((r) => RECORDS[name]?.(r.id))
      if (mine.length === 0) return skip(notOffered)
      return judgeRecords(mine, ESSENTIAL.includes(name) || Boolean(ctx.options.deployed))
    },
  }
}

export function judgeRecords(records: RecordFinding[], mustHave: boolean): CheckOutcome {
  const bad = records.filter((r) => r.status !== 'ok')
  if (bad.length === 0) return ok(records.map((r) => `${r.name} ${r.type} ${r.detail}`).join('; '))
  const detail = bad.map((r) => `${r.name} ${r.type} ${r.status}: ${r.detail}`).join('; ')
  const lines = bad.flatMap((r) => r.fix ?? [])
  const hint = lines.length
    ? `set: ${lines.join(' | ')} (chatmail dns --check lists the zone)`
    : 'run chatmail dns --check'
  const required = bad.some((r) => r.level === 'required')
  return required && mustHave ? fail(detail, hint) : warn(detail, hint)
}

/** A name the certificate names, with a leading `*.` matching exactly one label. */
export function certificateCovers(names: readonly string[], host: string): boolean {
  const h = host.toLowerCase()
  return names.some((n) => {
    const c = n.toLowerCase()
    if (c === h) return true
    return c.startsWith('*.') && h.endsWith(c.slice(1)) && !h.slice(0, h.length - c.length + 1).includes('.')
  })
}

const certificateCheck: CheckDef = {
  id: 'dns.certificate',
  group: 'dns',
  title: 'the certificate covers every name the zone publishes',
  async run(ctx) {
    const why = notApplicable(ctx) ?? (await specialUse(ctx))
    if (why) return skip(why)
    const { buildZone, certificateNames, zoneInputFor } = await import('../../dns/index.js')
    const o = ctx.options
    const names = certificateNames(buildZone(o.dnsZone ?? zoneInputFor(o.domain, undefined)), o.domain)
    // Where Delta Chat connects (the IMAP host), on the HTTPS port (the policy is served there).
    const where = { host: o.imapHost, port: endpointAddress(ctx, 'https').port }
    let covered: string[]
    try {
      const cert = await probeImapTls(where.host, where.port, { starttls: false, ca: o.ca, signal: ctx.signal })
      covered = cert.names
    } catch (err) {
      const text = `no certificate from ${where.host}:${where.port}: ${(err as Error).message}`
      return o.deployed ? fail(text, 'start nginx (systemctl status nginx)') : skip(`${text} (tls.https judges HTTPS)`)
    }
    const missing = names.filter((n) => !certificateCovers(covered, n))
    if (missing.length === 0) return ok(`${names.join(', ')} (certificate on ${where.host}:${where.port})`)
    const text = `the certificate on ${where.host}:${where.port} is for ${covered.join(', ') || 'no name'}, not ${missing.join(', ')}`
    const hint = `get a certificate for ${names.join(', ')}${o.deployed ? ' (chatmail deploy host requests them)' : ''}`
    return o.deployed ? fail(text, hint) : warn(text, hint)
  },
}

export const dnsChecks: CheckDef[] = [
  recordCheck('address', 'A/AAAA: the IMAP host has addresses', ''),
  recordCheck('mx', 'MX: mail for the domain reaches the server', ''),
  recordCheck('spf', 'SPF: the server may send for the domain', ''),
  recordCheck('dkim', "DKIM: the server's key is published", ''),
  recordCheck('dmarc', 'DMARC: forged mail is refused', ''),
  recordCheck(
    'mta-sts',
    'MTA-STS: the policy record and the mta-sts name',
    'no MTA-STS for this server (self-signed TLS)',
  ),
  recordCheck(
    'tls-rpt',
    'TLS-RPT: where TLS failures are reported',
    'no report address known (mail.admin or tls.acme_email in chatmail.toml)',
  ),
  recordCheck('srv', 'SRV: IMAP and submission (RFC 6186)', ''),
  recordCheck(
    'caa',
    'CAA: the ACME CA may issue',
    'the ACME CA is not known (no chatmail.toml for the domain, or not ACME with a CA we know)',
  ),
  certificateCheck,
]
