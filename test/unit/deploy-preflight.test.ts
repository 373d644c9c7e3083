import { describe, expect, test } from 'vitest'
import { emptyFacts, type Facts } from '../../src/deploy/facts.js'
import {
  authoritativeAddresses,
  describeOs,
  preflightDns,
  preflightFacts,
  supportedRelease,
} from '../../src/deploy/preflight.js'

const base: Facts = {
  ...emptyFacts(),
  uid: 0,
  os: { id: 'debian', versionId: '12', codename: 'bookworm' },
  arch: 'x86_64',
  diskFreeKb: 20 * 1024 * 1024,
  addresses: ['10.0.0.5'],
  listeners: [
    { proto: 'tcp', address: '0.0.0.0', port: 22, processes: ['sshd'] },
    { proto: 'tcp', address: '0.0.0.0', port: 25, processes: ['exim4'] },
    { proto: 'tcp', address: '0.0.0.0', port: 80, processes: ['nginx'] },
    { proto: 'udp', address: '0.0.0.0', port: 3478, processes: [] },
  ],
}

describe('preflight', () => {
  test('a good host passes', () => {
    expect(preflightFacts(base, { ports: [{ port: 80, proto: 'tcp', owners: ['nginx'] }] })).toEqual([])
  })

  test('OS, arch, root and disk problems are named', () => {
    const bad = {
      ...base,
      os: { id: 'ubuntu', versionId: '24.04', codename: 'noble' },
      arch: 'armv7l',
      uid: 1000,
      diskFreeKb: 100 * 1024,
    }
    expect(preflightFacts(bad, { ports: [] }).map((p) => p.message)).toEqual([
      'the host runs Ubuntu 24.04 (noble); chatmail deploys to Debian 12 (bookworm) or Debian 13 (trixie) only',
      "the host's architecture armv7l is not supported",
      'commands on the host run as uid 1000, not root',
      'only 100 MB free on / (at least 1024 MB needed)',
    ])
    expect(
      preflightFacts({ ...base, os: { id: 'debian', versionId: '13', codename: 'trixie' } }, { ports: [] }),
    ).toEqual([])
  })

  test('only Debian 12 and 13 are supported; the message names what was found', () => {
    const osProblem = (os: Facts['os']) => preflightFacts({ ...base, os }, { ports: [] }).map((p) => p.message)
    expect(osProblem({ id: 'debian', versionId: '12', codename: 'bookworm' })).toEqual([])
    expect(osProblem({ id: 'debian', versionId: '11', codename: 'bullseye' })).toEqual([
      'the host runs Debian 11 (bullseye); chatmail deploys to Debian 12 (bookworm) or Debian 13 (trixie) only',
    ])
    expect(osProblem({ id: 'debian', versionId: '', codename: 'forky' })).toEqual([
      'the host runs Debian testing/unstable (forky); chatmail deploys to Debian 12 (bookworm) or Debian 13 (trixie) only',
    ])
    expect(osProblem({ id: '', versionId: '', codename: '' })[0]).toMatch(/^the host runs an unknown system/)
    expect(describeOs({ id: 'debian', versionId: '13', codename: 'trixie' })).toBe('Debian 13 (trixie)')
    expect(supportedRelease({ id: 'debian', versionId: '13', codename: 'trixie' })).toBe('13')
    expect(supportedRelease({ id: 'ubuntu', versionId: '13', codename: '' })).toBeUndefined()
  })

  test('a foreign process on a claimed port stops the deploy, by name', () => {
    const problems = preflightFacts(base, {
      ports: [
        { port: 25, proto: 'tcp', owners: ['master'] },
        { port: 3478, proto: 'udp', owners: ['turnserver'] },
        { port: 3478, proto: 'tcp', owners: ['turnserver'] },
      ],
    })
    expect(problems.map((p) => p.message)).toEqual([
      'port 25/tcp is held by exim4 (expected master)',
      'port 3478/udp is held by an unknown process (expected turnserver)',
    ])
    expect(problems[0]?.hint).toContain('exim4')
  })

  test('DNS must point at the host (its own address or the one SSH reached)', async () => {
    const resolver = (map: Record<string, string[]>) => async (name: string) => {
      const r = map[name]
      if (!r) throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' })
      return r
    }
    expect(
      await preflightDns('mail.example.org', base, '10.0.0.5', resolver({ 'mail.example.org': ['10.0.0.5'] })),
    ).toEqual([])
    expect(
      await preflightDns(
        'mail.example.org',
        base,
        'vps.example.net',
        resolver({ 'mail.example.org': ['203.0.113.7'], 'vps.example.net': ['203.0.113.7'] }),
      ),
    ).toEqual([])
    const wrong = await preflightDns(
      'mail.example.org',
      base,
      '10.0.0.5',
      resolver({ 'mail.example.org': ['198.51.100.1'] }),
    )
    expect(wrong[0]?.message).toBe('mail.example.org resolves to 198.51.100.1, which is not this host (10.0.0.5)')
    const none = await preflightDns('mail.example.org', base, '10.0.0.5', resolver({}))
    expect(none[0]?.message).toBe('mail.example.org does not resolve (ENOTFOUND)')
    expect(none[0]?.hint).toContain('--skip-dns-check')
  })

  test('an IP-only server asks no nameserver: its address is the answer (this host or not)', async () => {
    expect(await authoritativeAddresses('10.0.0.5')).toEqual(['10.0.0.5'])
    expect(await authoritativeAddresses('2001:db8::5')).toEqual(['2001:db8::5'])
    expect(await preflightDns('10.0.0.5', base, '10.0.0.5')).toEqual([])
    const other = await preflightDns('198.51.100.1', base, '10.0.0.5')
    expect(other[0]?.message).toBe('198.51.100.1 resolves to 198.51.100.1, which is not this host (10.0.0.5)')
  })
})
