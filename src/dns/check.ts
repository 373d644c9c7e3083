/**
 * Compares what the authoritative servers publish with the zone the server needs, every record at
 * once. Judging is pure (`judge`: entry + answers → finding); `checkZone` only gathers the answers.
 * Fair to setups that differ from ours: a CNAME that leads to the right records is right (DKIM keys
 * at a provider, mta-sts as a CNAME or as addresses), an SPF or DMARC record that is not ours word
 * for word is right when it does the job.
 */
import type { RrsetAnswer, RrsetLookup } from './resolver.js'
import { type RrType, rdata, type ZoneEntry } from './zone.js'

export type FindingStatus = 'ok' | 'missing' | 'wrong' | 'error'

export interface RecordFinding {
  id: string
  name: string
  type: RrType
  level: 'required' | 'recommended'
  purpose: string
  status: FindingStatus
  /** What was found (values, or `CNAME target` steps), for the report. */
  found: string[]
  /** One line: what is right or wrong. */
  detail: string
  /** The zone lines to set (missing or wrong), or what to do when the value is not known here. */
  fix?: string[]
}

/** Answers a judgement needs: the entry's own lookup, and a few others by `name type`. */
export type Answers = ReadonlyMap<string, RrsetAnswer | Error>

export const answerKey = (name: string, type: RrType) => `${name} ${type}`

/** The questions to ask for an entry (name, type). */
export function questionsFor(e: ZoneEntry, domain: string): [string, RrType][] {
  switch (e.id) {
    case 'a':
    case 'aaaa':
      return [
        [e.name, 'A'],
        [e.name, 'AAAA'],
        [e.name, 'CNAME'],
      ]
    case 'mta-sts.name':
      return [
        [e.name, 'A'],
        [e.name, 'AAAA'],
        [domain, 'A'],
        [domain, 'AAAA'],
      ]
    case 'caa':
      return caaNames(e.name).map((n) => [n, 'CAA'] as [string, RrType])
    default:
      return [[e.name, e.type]]
  }
}

/** CAA applies from the closest name up the tree that has CAA records (RFC 8659). */
function caaNames(name: string): string[] {
  const labels = name.split('.')
  return labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'))
}

/** Asks every question of every entry (at most `parallel` at a time) and judges each entry. */
export async function checkZone(
  entries: readonly ZoneEntry[],
  domain: string,
  lookup: RrsetLookup,
  o: { ttl?: number; parallel?: number } = {},
): Promise<RecordFinding[]> {
  const wanted = new Map<string, [string, RrType]>()
  for (const e of entries) for (const q of questionsFor(e, domain)) wanted.set(answerKey(...q), q)
  const answers = new Map<string, RrsetAnswer | Error>()
  const queue = [...wanted.entries()]
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [key, [name, type]] = next
      answers.set(
        key,
        await lookup(name, type).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
      )
    }
  }
  await Promise.all(Array.from({ length: o.parallel ?? 6 }, worker))
  return entries.map((e) => judge(e, domain, answers, o.ttl))
}

const lc = (s: string) => s.toLowerCase().replace(/\.$/, '')

function zoneLines(e: ZoneEntry, ttl = 3600): string[] {
  return e.values.map((v) => `${e.name}. ${ttl} IN ${e.type} ${rdata(e.type, v)}`)
}

/** Tags of a `k=v; k=v` record (DKIM, DMARC, MTA-STS, TLS-RPT), keys lower case. */
export function tags(text: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const part of text.split(';')) {
    const i = part.indexOf('=')
    if (i > 0) m.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim())
  }
  return m
}

const quoted = (values: string[]) => values.map((v) => `"${v}"`).join(', ')

export function judge(e: ZoneEntry, domain: string, answers: Answers, ttl?: number): RecordFinding {
  const base = { id: e.id, name: e.name, type: e.type, level: e.level, purpose: e.purpose }
  const fix = e.values.length > 0 ? zoneLines(e, ttl) : undefined
  const result = (status: FindingStatus, detail: string, found: string[], hint?: string[]): RecordFinding => ({
    ...base,
    status,
    detail,
    found,
    ...(status === 'missing' || status === 'wrong' ? { fix: hint ?? fix ?? [] } : {}),
  })
  const get = (name: string, type: RrType): RrsetAnswer | Error | undefined => answers.get(answerKey(name, type))
  const failed = questionsFor(e, domain)
    .map(([n, t]) => get(n, t))
    .find((a): a is Error => a instanceof Error)
  if (failed) return result('error', `could not be checked: ${failed.message}`, [])
  const ans = (name: string, type: RrType) => get(name, type) as RrsetAnswer
  const values = (a: RrsetAnswer) => a.records.map((r) => r.value)
  const via = (a: RrsetAnswer) => (a.cnames.length ? ` (via CNAME ${a.cnames.map((c) => c.target).join(' → ')})` : '')

  switch (e.id) {
    case 'a':
    case 'aaaa': {
      const type = e.type as 'A' | 'AAAA'
      const cname = ans(e.name, 'CNAME')
      if (cname.records.length > 0 && lc(e.name) === lc(domain)) {
        return result(
          'wrong',
          `${e.name} is a CNAME (to ${cname.records[0]?.value}): the mail domain also needs MX and TXT records, which cannot sit beside a CNAME`,
          cname.records.map((r) => `CNAME ${r.value}`),
          [`delete the CNAME of ${e.name}, then:`, ...(fix ?? [`${e.name}. ${ttl ?? 3600} IN A <address>`])],
        )
      }
      const a = ans(e.name, type)
      const has = values(a)
      if (e.values.length === 0) {
        const any = [...values(ans(e.name, 'A')), ...values(ans(e.name, 'AAAA'))]
        return any.length > 0
          ? result('ok', `has ${any.join(', ')} (addresses not compared: none given)`, any)
          : result(
              'missing',
              `${e.name} has no A or AAAA record`,
              [],
              [`${e.name}. ${ttl ?? 3600} IN A <the server's address>`],
            )
      }
      if (has.length === 0) return result('missing', `${e.name} has no ${type} record`, [])
      const want = new Set(e.values.map(lc))
      const extra = has.filter((v) => !want.has(lc(v)))
      const lacking = e.values.filter((v) => !has.map(lc).includes(lc(v)))
      if (extra.length === 0 && lacking.length === 0) return result('ok', `${has.join(', ')}${via(a)}`, has)
      return result(
        'wrong',
        `${type} is ${has.join(', ')}${via(a)}; the server is ${e.values.join(', ')}${extra.length ? ` (remove ${extra.join(', ')}: mail and clients would go there)` : ''}`,
        has,
      )
    }
    case 'mx': {
      const a = ans(e.name, 'MX')
      const has = values(a)
      if (has.length === 0)
        return result('missing', `${e.name} has no MX record: other servers cannot deliver to it`, [])
      const exchanges = has.map((v) => lc(v.split(' ')[1] ?? ''))
      if (exchanges.includes(lc(domain))) return result('ok', has.join(', '), has)
      return result('wrong', `MX is ${has.join(', ')}, not ${domain}: mail for the domain goes elsewhere`, has)
    }
    case 'spf': {
      const a = ans(e.name, 'TXT')
      const spf = values(a).filter((v) => /^v=spf1(\s|$)/i.test(v))
      if (spf.length === 0) return result('missing', `${e.name} has no SPF record`, [])
      if (spf.length > 1) {
        return result('wrong', `${spf.length} SPF records: receivers treat that as an error (permerror)`, spf, [
          `keep only one: ${(fix ?? [])[0] ?? ''}`,
        ])
      }
      const terms = (spf[0] as string).toLowerCase().split(/\s+/).slice(1)
      const coversServer = terms.some((t) => /^\+?(a|mx)(:|\/|$)/.test(t) || /^\+?(ip4|ip6|include):/.test(t))
      if (terms.includes('+all') || terms.includes('all')) {
        return result('wrong', `"${spf[0]}" lets anyone send as ${domain} (+all)`, spf)
      }
      return coversServer
        ? result('ok', `"${spf[0]}"`, spf)
        : result('wrong', `"${spf[0]}" does not allow the server to send (no a, mx, ip4 or ip6)`, spf)
    }
    case 'dkim': {
      const a = ans(e.name, 'TXT')
      const recs = values(a).filter((v) => /(^|;)\s*(v=DKIM1|p=)/i.test(v))
      if (recs.length === 0) {
        return result(
          'missing',
          `no DKIM key at ${e.name}: other servers cannot verify its mail${e.values.length ? '' : ' (deploy first, then `chatmail dns` prints the key)'}`,
          [],
          fix ?? ['the key is on the server: run `chatmail dns` with SSH access to print the record'],
        )
      }
      if (recs.length > 1) return result('wrong', `${recs.length} DKIM records at ${e.name}: keep one`, recs)
      const t = tags(recs[0] as string)
      const p = (t.get('p') ?? '').replace(/\s+/g, '')
      if (!p) return result('wrong', `the DKIM record at ${e.name} has no key (p= is empty: revoked)`, recs)
      if (e.values.length === 0)
        return result('ok', `a key is published${via(a)} (not compared: the server's key was not read)`, recs)
      const want = (tags(e.values[0] as string).get('p') ?? '').replace(/\s+/g, '')
      return p === want
        ? result('ok', `the server's key${via(a)}`, recs)
        : result('wrong', `the published key is not the server's: its mail would fail DKIM`, recs)
    }
    case 'dmarc': {
      const recs = values(ans(e.name, 'TXT')).filter((v) => /^v=DMARC1\s*(;|$)/i.test(v))
      if (recs.length === 0) return result('missing', `${e.name} has no DMARC record`, [])
      if (recs.length > 1) return result('wrong', `${recs.length} DMARC records: receivers ignore them all`, recs)
      const policy = (tags(recs[0] as string).get('p') ?? '').toLowerCase()
      if (policy === 'reject' || policy === 'quarantine') return result('ok', `"${recs[0]}"`, recs)
      return result(
        'wrong',
        policy
          ? `p=${policy}: mail forged in the domain's name is still delivered`
          : `"${recs[0]}" has no policy (p=): receivers ignore it`,
        recs,
      )
    }
    case 'mta-sts': {
      const recs = values(ans(e.name, 'TXT')).filter((v) => /^v=STSv1\s*(;|$)/i.test(v))
      if (recs.length === 0) return result('missing', `${e.name} has no MTA-STS record`, [])
      if (recs.length > 1) return result('wrong', `${recs.length} MTA-STS records: senders ignore them all`, recs)
      const id = tags(recs[0] as string).get('id') ?? ''
      if (!/^[A-Za-z0-9]{1,32}$/.test(id)) return result('wrong', `id=${id} is not 1-32 letters and digits`, recs)
      return result('ok', `"${recs[0]}"`, recs)
    }
    case 'mta-sts.name': {
      const v4 = ans(e.name, 'A')
      const v6 = ans(e.name, 'AAAA')
      const got = [...values(v4), ...values(v6)]
      const chain = v4.cnames.length ? v4.cnames : v6.cnames
      const steps = chain.map((c) => `CNAME ${c.target}`)
      if (chain.some((c) => lc(c.target) === lc(domain))) return result('ok', `CNAME ${domain}`, steps)
      if (got.length === 0) {
        return result('missing', `${e.name} has no address: the MTA-STS policy cannot be fetched`, steps)
      }
      const server = new Set([...values(ans(domain, 'A')), ...values(ans(domain, 'AAAA'))].map(lc))
      return got.every((x) => server.has(lc(x)))
        ? result(
            'ok',
            `${got.join(', ')}${chain.length ? ` (via ${steps.join(' → ')})` : ''}, the server's addresses`,
            [...steps, ...got],
          )
        : result(
            'wrong',
            `${e.name} is ${got.join(', ')}${chain.length ? ` (via ${steps.join(' → ')})` : ''}, not the server`,
            [...steps, ...got],
          )
    }
    case 'tls-rpt': {
      const recs = values(ans(e.name, 'TXT')).filter((v) => /^v=TLSRPTv1\s*(;|$)/i.test(v))
      if (recs.length === 0) return result('missing', `${e.name} has no TLS-RPT record`, [])
      if (recs.length > 1) return result('wrong', `${recs.length} TLS-RPT records: senders ignore them all`, recs)
      return tags(recs[0] as string).get('rua')
        ? result('ok', `"${recs[0]}"`, recs)
        : result('wrong', `"${recs[0]}" names no rua= (where reports go)`, recs)
    }
    case 'caa': {
      const names = questionsFor(e, domain).map(([n]) => n)
      const at = names.find((n) => ans(n, 'CAA').records.length > 0)
      if (!at) return result('missing', `no CAA record: any CA may issue certificates for ${domain}`, [])
      const recs = values(ans(at, 'CAA'))
      const issuers = recs
        .map((v) => /^\d+ issue "([^"]*)"$/i.exec(v)?.[1])
        .filter((x): x is string => x !== undefined)
        .map((v) => lc(v.split(';')[0]?.trim() ?? ''))
      const ca = lc((/"([^"]*)"/.exec(e.values[0] ?? '')?.[1] ?? '').split(';')[0] as string)
      const where = at === e.name ? '' : ` (at ${at})`
      if (issuers.length === 0 || issuers.includes(ca)) return result('ok', `${recs.join(', ')}${where}`, recs)
      // A CAA that forbids our CA stops renewals: that is as bad as a missing required record.
      return {
        ...result(
          'wrong',
          `CAA${where} allows only ${issuers.filter(Boolean).join(', ') || 'no CA'}: ${ca} cannot issue or renew the certificate`,
          recs,
        ),
        level: 'required',
      }
    }
    default: {
      if (e.type === 'SRV') {
        const a = ans(e.name, 'SRV')
        const has = values(a)
        if (has.length === 0) return result('missing', `${e.name} has no SRV record`, [])
        const [, , port, target] = (e.values[0] as string).split(' ')
        const matches = has.some((v) => {
          const p = v.split(' ')
          return p[2] === port && lc(p[3] ?? '') === lc(target ?? '')
        })
        return matches
          ? result('ok', has.join(', '), has)
          : result('wrong', `SRV is ${has.join(', ')}; the server is ${target} port ${port}`, has)
      }
      const has = values(ans(e.name, e.type))
      if (has.length === 0) return result('missing', `${e.name} has no ${e.type} record`, [])
      return e.values.every((v) => has.map(lc).includes(lc(v)))
        ? result('ok', quoted(has), has)
        : result('wrong', `${e.type} is ${quoted(has)}`, has)
    }
  }
}

/** The overall verdict: fail when a required record is missing, wrong or unchecked; warn for recommended ones. */
export function zoneStatus(findings: readonly RecordFinding[]): 'ok' | 'warn' | 'fail' {
  const bad = findings.filter((f) => f.status !== 'ok')
  if (bad.some((f) => f.level === 'required')) return 'fail'
  return bad.length ? 'warn' : 'ok'
}
