import { describe, expect, test } from 'vitest'
import { dkimPublicKeyCommand, parseDkimPublicKey } from '../../src/dns/dkim-key.js'
import { parseNameServer } from '../../src/dns/query.js'
import { inZone } from '../../src/dns/resolver.js'
import {
  buildZone,
  caaIssuerFor,
  certificateNames,
  mtaStsIdAt,
  renderZone,
  txtStrings,
  type ZoneInput,
} from '../../src/dns/zone.js'
import { zoneRecordIds } from '../helpers/zone-records.js'

const RSA_SPKI =
  'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwZ7l2Q0mC7b4v0Yh7Xg1k9dT0n2l3sY8S5m6JqQx3s1pWk5Z0g9mYQ3cB4q0xk3m7JYv8f0hQ2wqf3dA4X1n1gkq9bS4o0c2YdQkq5pR0u5d5Yv8s1m2cJ9WwR7v9qS3e5t8uK2l1wZ6p4mX0dQ7j9bT3vR5nK8cL1sY2fH6gA0qW4eE9rD3tU7yI1oP5aS8dF2gH4jK6lZ0xC9vB7nM3qW1eR5tY8uI2oP4aS6dF9gH1jK3lZ5xC7vB9nM1qW3eR7tY0uI4oP6aS8dF2gH4jK6lZ8xC0vB2nM4qW6eR9tY1uI3oP5aS7dF0gH2jK4lZ6xC8vB1nM3qW5eR7tY9uI2oP4aS6dF8gH0jK2lZ4xC6vB8nM0qQIDAQAB'

const base: ZoneInput = {
  domain: 'chat.example.org',
  ipv4: ['203.0.113.5'],
  ipv6: ['2001:db8::5'],
  dkim: { selector: 'opendkim', publicKey: RSA_SPKI },
  dkimSelector: 'opendkim',
  mtaSts: true,
  mtaStsId: '202611300800',
  caaIssuer: 'letsencrypt.org',
  tlsRptAddress: 'ops@example.org',
  imapPort: 993,
}

describe('zone', () => {
  test('every record the server needs, at the right names', () => {
    const zone = buildZone(base)
    const line = (id: string) => zone.find((e) => e.id === id)
    expect(zone.map((e) => e.id)).toEqual(zoneRecordIds({ ipv6: true }))
    expect(line('mx')).toMatchObject({ name: 'chat.example.org', values: ['10 chat.example.org.'] })
    expect(line('dkim')?.name).toBe('opendkim._domainkey.chat.example.org')
    expect(line('dkim')?.values[0]).toBe(`v=DKIM1; k=rsa; p=${RSA_SPKI}; s=email; t=s`)
    expect(line('dmarc')?.name).toBe('_dmarc.chat.example.org')
    expect(line('mta-sts')?.values).toEqual(['v=STSv1; id=202611300800'])
    expect(line('mta-sts.name')).toMatchObject({ name: 'mta-sts.chat.example.org', type: 'CNAME' })
    expect(line('tls-rpt')).toMatchObject({ name: '_smtp._tls.chat.example.org' })
    expect(line('srv.submissions')?.values).toEqual(['0 1 465 chat.example.org.'])
    expect(line('caa')?.values).toEqual(['0 issue "letsencrypt.org"'])
    expect(certificateNames(zone, 'chat.example.org')).toEqual(['chat.example.org', 'mta-sts.chat.example.org'])
  })

  test('without addresses, key, MTA-STS or a known CA: what is unknown is left open, what is not offered is left out', () => {
    const zone = buildZone({
      ...base,
      ipv4: [],
      ipv6: [],
      dkim: undefined,
      mtaSts: false,
      caaIssuer: undefined,
      tlsRptAddress: undefined,
    })
    expect(zone.find((e) => e.id === 'a')?.values).toEqual([])
    expect(zone.find((e) => e.id === 'aaaa')).toBeUndefined()
    expect(zone.find((e) => e.id === 'dkim')?.values).toEqual([])
    expect(zone.some((e) => e.id.startsWith('mta-sts') || e.id === 'caa' || e.id === 'tls-rpt')).toBe(false)
    const text = renderZone(zone)
    expect(text).toContain('; opendkim._domainkey.chat.example.org. 3600 IN TXT <the DKIM key')
    expect(text).toContain('; chat.example.org. 3600 IN A <the server address: pass --address IP>')
  })

  test('BIND text: fully qualified owners, long TXT split into 255-byte strings, quotes escaped', () => {
    const text = renderZone(buildZone(base), { header: ['zone for chat.example.org'] })
    expect(text.split('\n')[0]).toBe('; zone for chat.example.org')
    expect(text).toContain('chat.example.org. 3600 IN A 203.0.113.5')
    expect(text).toContain('chat.example.org. 3600 IN AAAA 2001:db8::5')
    expect(text).toContain('chat.example.org. 3600 IN MX 10 chat.example.org.')
    expect(text).toContain('chat.example.org. 3600 IN TXT "v=spf1 a ~all"')
    expect(text).toContain('mta-sts.chat.example.org. 3600 IN CNAME chat.example.org.')
    expect(text).toContain('_submission._tcp.chat.example.org. 3600 IN SRV 0 1 587 chat.example.org.')
    expect(text).toMatch(
      /opendkim\._domainkey\.chat\.example\.org\. 3600 IN TXT \( "v=DKIM1[^"]{200,}"\n {4}"[^"]+" \)/,
    )
    expect(txtStrings('a'.repeat(300)).map((s) => s.length)).toEqual([257, 47])
    expect(txtStrings('say "hi" \\')).toEqual(['"say \\"hi\\" \\\\"'])
    expect(txtStrings('')).toEqual(['""'])
  })

  test('CAA names the CA of the ACME directory; unknown directories get none', () => {
    expect(caaIssuerFor('https://acme-v02.api.letsencrypt.org/directory')).toBe('letsencrypt.org')
    expect(caaIssuerFor('https://acme-staging-v02.api.letsencrypt.org/directory')).toBe('letsencrypt.org')
    expect(caaIssuerFor('https://acme.zerossl.com/v2/DV90')).toBe('sectigo.com')
    expect(caaIssuerFor('https://10.213.11.1:14000/dir')).toBeUndefined()
    expect(caaIssuerFor('not a url')).toBeUndefined()
    expect(mtaStsIdAt(new Date('2026-11-30T08:05:09Z'))).toBe('202611300805')
  })

  test('DKIM public key: read on the host without the private key leaving it; RSA and Ed25519 parsed', () => {
    expect(dkimPublicKeyCommand()).toBe(
      'test -s /etc/dkimkeys/opendkim.private || exit 1; openssl pkey -in /etc/dkimkeys/opendkim.private -pubout -outform DER | base64 -w0',
    )
    expect(parseDkimPublicKey(`${RSA_SPKI}\n`)).toEqual({ selector: 'opendkim', publicKey: RSA_SPKI, keyType: 'rsa' })
    const raw = Buffer.alloc(32, 7)
    const ed = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]).toString('base64')
    expect(parseDkimPublicKey(ed)).toEqual({
      selector: 'opendkim',
      publicKey: raw.toString('base64'),
      keyType: 'ed25519',
    })
    expect(parseDkimPublicKey('')).toBeUndefined()
    expect(parseDkimPublicKey('openssl: error')).toBeUndefined()
  })

  test('--nameserver values and zone membership', () => {
    expect(parseNameServer('127.0.0.1:5353')).toEqual({ address: '127.0.0.1', port: 5353 })
    expect(parseNameServer('192.0.2.53')).toEqual({ address: '192.0.2.53', port: 53 })
    expect(parseNameServer('[::1]:5353')).toEqual({ address: '::1', port: 5353 })
    expect(parseNameServer('2001:db8::53')).toEqual({ address: '2001:db8::53', port: 53 })
    expect(parseNameServer('127.0.0.1:0')).toBeUndefined()
    expect(parseNameServer('127.0.0.1:99999')).toBeUndefined()
    expect(inZone('a.b.example.org', 'example.org')).toBe(true)
    expect(inZone('example.org.', 'EXAMPLE.org')).toBe(true)
    expect(inZone('badexample.org', 'example.org')).toBe(false)
  })
})
