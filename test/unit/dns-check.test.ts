import { describe, expect, test } from 'vitest'
import { answerKey, judge, zoneStatus } from '../../src/dns/check.js'
import type { RrsetAnswer } from '../../src/dns/resolver.js'
import { buildZone, type RrType } from '../../src/dns/zone.js'
import { certificateCovers, judgeRecords } from '../../src/doctor/checks/dns.js'

const zone = buildZone({
  domain: 'chat.example.org',
  ipv4: ['203.0.113.5'],
  ipv6: [],
  dkimSelector: 'opendkim',
  mtaSts: true,
  mtaStsId: '1',
  caaIssuer: 'letsencrypt.org',
  imapPort: 993,
})
const entry = (id: string) => zone.find((e) => e.id === id) as (typeof zone)[number]

function answers(map: Record<string, string[]>): Map<string, RrsetAnswer> {
  const m = new Map<string, RrsetAnswer>()
  for (const [key, values] of Object.entries(map)) {
    const [name, type] = key.split(' ') as [string, RrType]
    m.set(answerKey(name, type), {
      name,
      type,
      status: values.length ? 'ok' : 'nodata',
      records: values.map((value) => ({ name, type, ttl: 60, value })),
      cnames: [],
      server: 'test',
    })
  }
  return m
}
const at = (id: string, map: Record<string, string[]>) => judge(entry(id), 'chat.example.org', answers(map))

describe('judging published records', () => {
  test('SPF: one record that lets the server send; +all and two records are wrong', () => {
    expect(at('spf', { 'chat.example.org TXT': ['v=spf1 mx -all'] }).status).toBe('ok')
    expect(at('spf', { 'chat.example.org TXT': ['v=spf1 ip4:203.0.113.5 ~all', 'google-site=x'] }).status).toBe('ok')
    expect(at('spf', { 'chat.example.org TXT': ['v=spf1 +all'] }).detail).toMatch(/anyone/)
    expect(at('spf', { 'chat.example.org TXT': ['v=spf1 a', 'v=spf1 mx'] }).detail).toMatch(/permerror/)
    expect(at('spf', { 'chat.example.org TXT': ['v=spf1 -all'] }).status).toBe('wrong')
    expect(at('spf', { 'chat.example.org TXT': [] }).status).toBe('missing')
  })

  test('DMARC: reject or quarantine; p=none and no policy are wrong', () => {
    expect(at('dmarc', { '_dmarc.chat.example.org TXT': ['v=DMARC1; p=quarantine'] }).status).toBe('ok')
    expect(at('dmarc', { '_dmarc.chat.example.org TXT': ['v=DMARC1; p=none'] }).status).toBe('wrong')
    expect(at('dmarc', { '_dmarc.chat.example.org TXT': ['v=DMARC1'] }).detail).toMatch(/no policy/)
  })

  test('DKIM without the host key: any published key is accepted and said to be uncompared; p= empty is revoked', () => {
    expect(at('dkim', { 'opendkim._domainkey.chat.example.org TXT': ['v=DKIM1; k=rsa; p=MIIBIjAN'] }).detail).toMatch(
      /not compared/,
    )
    expect(at('dkim', { 'opendkim._domainkey.chat.example.org TXT': ['v=DKIM1; p='] }).detail).toMatch(/revoked/)
    expect(at('dkim', { 'opendkim._domainkey.chat.example.org TXT': [] }).fix?.[0]).toMatch(/SSH access/)
  })

  test('CAA is looked up the tree: a parent that allows the CA is ok, one that does not is a required fix', () => {
    const none = { 'chat.example.org CAA': [], 'example.org CAA': [] }
    expect(at('caa', none).status).toBe('missing')
    expect(
      at('caa', { ...none, 'example.org CAA': ['0 issue "letsencrypt.org; validationmethods=http-01"'] }),
    ).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('(at example.org)'),
    })
    const blocked = at('caa', { ...none, 'example.org CAA': ['0 issue "pki.goog"', '0 iodef "mailto:x@example.org"'] })
    expect(blocked).toMatchObject({ status: 'wrong', level: 'required' })
    expect(at('caa', { ...none, 'example.org CAA': ['0 iodef "mailto:x@example.org"'] }).status).toBe('ok')
  })

  test('A: an extra address is wrong (mail would go there); MTA-STS ids are checked for form', () => {
    expect(
      at('a', { 'chat.example.org A': ['203.0.113.5'], 'chat.example.org AAAA': [], 'chat.example.org CNAME': [] })
        .status,
    ).toBe('ok')
    expect(
      at('a', {
        'chat.example.org A': ['203.0.113.5', '198.51.100.1'],
        'chat.example.org AAAA': [],
        'chat.example.org CNAME': [],
      }).detail,
    ).toMatch(/remove 198\.51\.100\.1/)
    expect(at('mta-sts', { '_mta-sts.chat.example.org TXT': ['v=STSv1; id=20261130'] }).status).toBe('ok')
    expect(at('mta-sts', { '_mta-sts.chat.example.org TXT': ['v=STSv1; id='] }).status).toBe('wrong')
  })

  test('verdicts: required problems fail, recommended ones warn; errors are named', () => {
    const missingSrv = at('srv.imaps', { '_imaps._tcp.chat.example.org SRV': [] })
    expect(zoneStatus([missingSrv])).toBe('warn')
    expect(zoneStatus([at('mx', { 'chat.example.org MX': [] })])).toBe('fail')
    const failed = judge(
      entry('mx'),
      'chat.example.org',
      new Map([[answerKey('chat.example.org', 'MX'), new Error('timeout')]]),
    )
    expect(failed).toMatchObject({ status: 'error', detail: 'could not be checked: timeout' })
    expect(judgeRecords([at('mx', { 'chat.example.org MX': [] })], true).status).toBe('fail')
    expect(judgeRecords([at('dmarc', { '_dmarc.chat.example.org TXT': [] })], false).status).toBe('warn')
  })

  test('certificate names: exact, or a wildcard for one label', () => {
    expect(certificateCovers(['chat.example.org', '*.chat.example.org'], 'mta-sts.chat.example.org')).toBe(true)
    expect(certificateCovers(['*.example.org'], 'mta-sts.chat.example.org')).toBe(false)
    expect(certificateCovers(['CHAT.example.org'], 'chat.example.org')).toBe(true)
    expect(certificateCovers(['chat.example.org'], 'mta-sts.chat.example.org')).toBe(false)
  })
})
