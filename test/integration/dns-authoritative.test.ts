/**
 * The authoritative lookups of `chatmail dns` against a real authoritative server (Knot DNS on
 * loopback, test/helpers/authdns.ts): answers, NXDOMAIN and NODATA told apart, CNAMEs followed
 * inside a zone and into another zone, long TXT records over TCP.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { query } from '../../src/dns/query.js'
import { AuthoritativeResolver } from '../../src/dns/resolver.js'
import { type AuthDns, startAuthDns } from '../helpers/authdns.js'

let dns: AuthDns
beforeAll(async () => {
  dns = await startAuthDns()
  const long = Array.from({ length: 12 }, (_, i) => `"${String(i).padStart(3, '0')}${'x'.repeat(250)}"`).join(' ')
  await dns.setZone(
    'one.test',
    [
      'one.test. 300 IN A 10.0.0.1',
      'one.test. 300 IN MX 10 one.test.',
      'one.test. 300 IN TXT ( "v=spf1" " a ~all" )',
      'mta-sts.one.test. 300 IN CNAME one.test.',
      'www.one.test. 300 IN CNAME host.two.test.',
      'loop1.one.test. 300 IN CNAME loop2.one.test.',
      'loop2.one.test. 300 IN CNAME loop1.one.test.',
      `big.one.test. 300 IN TXT ( ${long} )`,
    ].join('\n'),
  )
  await dns.setZone('two.test', 'host.two.test. 300 IN A 10.0.0.9')
})
afterAll(async () => {
  await dns?.stop()
})

describe('authoritative lookups', () => {
  const resolver = () => new AuthoritativeResolver({ nameserver: { address: '127.0.0.1', port: dns.port } })

  test('an authoritative answer carries the AA flag; TXT strings are joined', async () => {
    const r = await query({ address: '127.0.0.1', port: dns.port }, 'one.test', 'TXT')
    expect(r.authoritative).toBe(true)
    expect(r.answers.map((a) => a.value)).toEqual(['v=spf1 a ~all'])
    expect((await resolver().lookup('one.test', 'MX')).records.map((x) => x.value)).toEqual(['10 one.test'])
  })

  test('NXDOMAIN and NODATA are told apart', async () => {
    expect((await resolver().lookup('nothing.one.test', 'A')).status).toBe('nxdomain')
    expect((await resolver().lookup('one.test', 'AAAA')).status).toBe('nodata')
  })

  test('CNAMEs are followed, inside the zone and into another one', async () => {
    const inside = await resolver().lookup('mta-sts.one.test', 'A')
    expect(inside).toMatchObject({ status: 'ok', cnames: [{ name: 'mta-sts.one.test', target: 'one.test' }] })
    expect(inside.records.map((x) => x.value)).toEqual(['10.0.0.1'])
    const across = await resolver().lookup('www.one.test', 'A')
    expect(across.cnames).toEqual([{ name: 'www.one.test', target: 'host.two.test' }])
    expect(across.records.map((x) => x.value)).toEqual(['10.0.0.9'])
    expect((await resolver().lookup('www.one.test', 'CNAME')).records.map((x) => x.value)).toEqual(['host.two.test'])
    await expect(resolver().lookup('loop1.one.test', 'A')).rejects.toThrow(/CNAME loop/)
  })

  test('a TXT too long for UDP comes over TCP', async () => {
    const r = await resolver().lookup('big.one.test', 'TXT')
    expect(r.records[0]?.value.length).toBe(12 * 253)
  })

  test("the zone's NS are found and asked (never a hidden primary); one that does not answer is passed over", async () => {
    {
      const asked: string[] = []
      const system = {
        resolveNs: async (name: string) => {
          asked.push(`NS ${name}`)
          if (name === 'one.test') return ['ns-lame.example.net', 'ns1.example.net']
          throw Object.assign(new Error('no data'), { code: 'ENODATA' })
        },
        // Both on loopback: nothing answers at 127.0.0.2, knot at 127.0.0.1.
        resolve4: async (name: string) => (name === 'ns-lame.example.net' ? ['127.0.0.2'] : ['127.0.0.1']),
        resolve6: async () => [] as string[],
      }
      const r = new AuthoritativeResolver({ system, port: dns.port, timeoutMs: 500 })
      const found = await r.serversFor('sub.one.test')
      expect(found.zone).toBe('one.test')
      expect(found.servers.map((x) => x.name)).toEqual(['ns-lame.example.net', 'ns1.example.net'])
      expect(asked).toEqual(['NS sub.one.test', 'NS one.test'])
      const a = await r.lookup('one.test', 'A')
      expect(a.records.map((x) => x.value)).toEqual(['10.0.0.1'])
      expect(a.server).toBe(`ns1.example.net (127.0.0.1:${dns.port})`)
    }
  })

  test('nothing listening: a clear error, no hang', async () => {
    const none = new AuthoritativeResolver({ nameserver: { address: '127.0.0.1', port: 9 }, timeoutMs: 400 })
    await expect(none.lookup('one.test', 'A')).rejects.toThrow(/127\.0\.0\.1:9/)
  })
})
