import { describe, expect, it } from 'vitest'
import { judgeExpiry, judgeHmac } from '../../src/doctor/checks/credentials.js'
import { judgeCertificate } from '../../src/doctor/checks/imap.js'
import { bareIpv6Host, judgeTurnValue } from '../../src/doctor/checks/metadata.js'
import { parseHostPort, parseTimeout } from '../../src/doctor/options.js'
import { seedFindings } from '../../src/doctor/overrides.js'
import { mintTurnCredential, turnPassword } from '../../src/protocols/turn-rest.js'

const NOW = 1_800_000_000_000
const SECRET = 'a-private-secret-of-enough-length'

describe('credentials', () => {
  const cred = mintTurnCredential(SECRET, { ttlSeconds: 86400, nowMs: NOW })
  it('hmac: ok with the right secret, fail with another, skip without one', () => {
    expect(judgeHmac(cred.username, cred.password, SECRET, NOW).status).toBe('ok')
    expect(judgeHmac(cred.username, cred.password, 'some-other-secret-xxxxxxxx', NOW)).toMatchObject({ status: 'fail' })
    expect(judgeHmac(cred.username, cred.password, undefined, NOW).status).toBe('skip')
  })
  it('hmac: the public "north" secret fails even when no secret is known', () => {
    const north = turnPassword('north', cred.username)
    expect(judgeHmac(cred.username, north, undefined, NOW)).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('north'),
    })
  })
  it('expiry: fail when past, warn under 12 h, ok beyond', () => {
    const s = NOW / 1000
    expect(judgeExpiry(s - 1, NOW).status).toBe('fail')
    expect(judgeExpiry(s + 11 * 3600, NOW).status).toBe('warn')
    expect(judgeExpiry(s + 13 * 3600, NOW).status).toBe('ok')
  })
})

describe('turn values as Delta Chat core parses them', () => {
  it('accepts host:port:timestamp:password (password may contain ":")', () => {
    expect(judgeTurnValue('k', 'turn.example.org:3478:1800000000:a:b=')).toEqual({
      turn: { host: 'turn.example.org', port: 3478, username: '1800000000', expires: 1800000000, password: 'a:b=' },
    })
  })
  it('names a bare IPv6 host', () => {
    expect(bareIpv6Host('2001:db8::1:3478:1800000000:pw')).toBe('2001:db8::1')
    expect(bareIpv6Host('::1:3478:1800000000:pw')).toBe('::1')
    expect(bareIpv6Host('h:3478:1800000000:pw')).toBeUndefined()
    const r = judgeTurnValue('k', '::1:3478:1800000000:pw')
    expect('outcome' in r && r.outcome.detail).toContain('IPv6')
  })
  it('fails a non-numeric username and an out-of-range port', () => {
    expect('outcome' in judgeTurnValue('k', 'h:3478:alice:pw')).toBe(true)
    expect('outcome' in judgeTurnValue('k', 'h:70000:1800000000:pw')).toBe(true)
  })
})

describe('certificates', () => {
  const base = {
    names: ['mail.example.org'],
    validFrom: new Date(NOW - 86_400_000),
    protocol: 'TLSv1.3',
    chainTrusted: true,
  }
  it('warns under 14 days left, ok beyond', () => {
    expect(
      judgeCertificate({ ...base, validTo: new Date(NOW + 10 * 86_400_000) }, 'mail.example.org', false, NOW).status,
    ).toBe('warn')
    expect(
      judgeCertificate({ ...base, validTo: new Date(NOW + 60 * 86_400_000) }, 'mail.example.org', false, NOW).status,
    ).toBe('ok')
  })
  it('an untrusted chain fails, and only warns with --insecure', () => {
    const bad = {
      ...base,
      validTo: new Date(NOW + 60 * 86_400_000),
      chainTrusted: false,
      chainError: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    }
    expect(judgeCertificate(bad, 'mail.example.org', false, NOW)).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('--ca'),
    })
    expect(judgeCertificate(bad, 'mail.example.org', true, NOW).status).toBe('warn')
  })
})

describe('options and overrides', () => {
  it('parses HOST:PORT and [v6]:PORT, refusing the rest as usage errors', () => {
    expect(parseHostPort('turn.example.org:3478', '--turn')).toEqual({ host: 'turn.example.org', port: 3478 })
    expect(parseHostPort('[2001:db8::1]:5349', '--turn')).toEqual({ host: '2001:db8::1', port: 5349 })
    expect(() => parseHostPort('turn.example.org', '--turn')).toThrow(/HOST:PORT/)
    expect(() => parseHostPort('h:0', '--turn')).toThrow(/HOST:PORT/)
  })
  it('parses --timeout in seconds', () => {
    expect(parseTimeout(undefined)).toBe(5000)
    expect(parseTimeout('2.5')).toBe(2500)
    expect(() => parseTimeout('0')).toThrow()
    expect(() => parseTimeout('soon')).toThrow()
  })
  it('mints TURN credentials for --turn when the secret is known, and only then', () => {
    const o = { domain: 'd', imapHost: 'd', imapPort: 993, insecure: false, timeoutMs: 1000 }
    expect(seedFindings({ ...o, turnOverride: { host: 't', port: 3478 } }, NOW).turn).toBeUndefined()
    const findings = seedFindings({ ...o, turnOverride: { host: 't', port: 3478 }, turnSecret: SECRET }, NOW)
    expect(findings.turnSource).toBe('minted')
    expect(findings.turn?.password).toBe(turnPassword(SECRET, findings.turn?.username ?? ''))
    expect(findings.turns).toMatchObject({ host: 't', port: 5349 })
  })
})
