import { describe, expect, it } from 'vitest'
import { formatDuration, parseDuration } from '../../src/protocols/duration.js'
import { formatTurnMetadata, parseIrohRelayUrl, parseTurnMetadata } from '../../src/protocols/metadata-values.js'
import { mintTurnCredential, turnPassword, verifyTurnCredential } from '../../src/protocols/turn-rest.js'

// Delta Chat core documents this metadata value (src/calls.rs); it was minted with chatmail-turn's
// public secret "north", which makes it an independent test vector for our HMAC.
const CORE_EXAMPLE = 'example.com:3478:1758650868:8Dqkyyu11MVESBqjbIylmB06rv8='

describe('TURN REST credentials', () => {
  it('matches an independent vector (core example, secret "north")', () => {
    expect(turnPassword('north', '1758650868')).toBe('8Dqkyyu11MVESBqjbIylmB06rv8=')
  })
  it('matches openssl for the expiry:NAME form', () => {
    // printf %s 1700000000:alice | openssl dgst -sha1 -hmac 'correct horse battery staple' -binary | base64
    expect(turnPassword('correct horse battery staple', '1700000000:alice')).toBe('2fHPp3DoKFH1wrDpnWx1AvX3eMY=')
  })
  it('mints username = now + ttl, optional :NAME', () => {
    const c = mintTurnCredential('s3cret-s3cret-s3cret', { ttlSeconds: 3600, nowMs: 1_700_000_000_500 })
    expect(c.username).toBe('1700003600')
    expect(c.expires).toBe(1_700_003_600)
    expect(c.password).toBe(turnPassword('s3cret-s3cret-s3cret', '1700003600'))
    const named = mintTurnCredential('x'.repeat(20), { ttlSeconds: 60, nowMs: 0, user: 'bob' })
    expect(named.username).toBe('60:bob')
  })
  it('verifies valid, expired, tampered and malformed credentials', () => {
    const secret = 'a-very-long-test-secret'
    const now = 1_800_000_000_000
    const c = mintTurnCredential(secret, { ttlSeconds: 600, nowMs: now })
    expect(verifyTurnCredential(secret, c.username, c.password, now)).toEqual({
      ok: true,
      expires: c.expires,
      secondsLeft: 600,
    })
    expect(verifyTurnCredential(secret, c.username, c.password, now + 601_000)).toMatchObject({
      ok: false,
      reason: 'expired',
    })
    const tampered = (c.password[0] === 'A' ? 'B' : 'A') + c.password.slice(1)
    expect(verifyTurnCredential(secret, c.username, tampered, now)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    })
    expect(verifyTurnCredential('other-secret-value', c.username, c.password, now)).toMatchObject({
      reason: 'bad-signature',
    })
    expect(verifyTurnCredential(secret, 'alice', c.password, now)).toMatchObject({ reason: 'malformed' })
    expect(verifyTurnCredential(secret, c.username, 'short', now)).toMatchObject({ reason: 'malformed' })
  })
})

describe('durations', () => {
  it.each([
    ['3600', 3600],
    ['90s', 90],
    ['30m', 1800],
    ['12h', 43200],
    ['5d', 432000],
    ['1d12h', 129600],
    [' 2W ', 1209600],
  ])('%s = %i s', (text, seconds) => {
    expect(parseDuration(text)).toEqual({ ok: true, seconds })
  })
  it.each(['0', '0s', '-5m', '-1', 'abc', '', '5x', '1.5h', 'h', '400d', '99999999999999999999'])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text).ok).toBe(false)
    },
  )
  it('formats exactly', () => {
    expect(formatDuration(86400)).toBe('1d')
    expect(formatDuration(5400)).toBe('1h30m')
    expect(formatDuration(59)).toBe('59s')
  })
})

describe('metadata values as Delta Chat core parses them', () => {
  it('parses the core example', () => {
    expect(parseTurnMetadata(CORE_EXAMPLE)).toEqual({
      ok: true,
      value: {
        host: 'example.com',
        port: 3478,
        username: '1758650868',
        expires: 1758650868,
        password: '8Dqkyyu11MVESBqjbIylmB06rv8=',
      },
    })
  })
  it('keeps colons after the third in the password', () => {
    const r = parseTurnMetadata('h.example:1:2:pa:ss')
    expect(r.ok && r.value.password).toBe('pa:ss')
  })
  it.each([
    ['no-colons', 'missing hostname'],
    ['host:3478', 'missing port'],
    ['host:3478:1700000000', 'missing timestamp'],
    ['host:70000:1:p', 'port'],
    ['host:x:1:p', 'port'],
    ['host:3478:1700000000:alice:p', ''],
    ['host:3478:ts:p', 'timestamp'],
    ['2001:db8::1:3478:1700000000:p', 'port'],
    [':3478:1:p', 'hostname is empty'],
  ])('%j fails', (value, reason) => {
    const r = parseTurnMetadata(value)
    if (value === 'host:3478:1700000000:alice:p') {
      // core takes "alice:p" as the password: the value parses, the credential will just not work.
      expect(r.ok).toBe(true)
      return
    }
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.reason).toContain(reason)
  })
  it('formats and refuses what core cannot parse', () => {
    expect(formatTurnMetadata('example.com', 3478, '1758650868', '8Dqkyyu11MVESBqjbIylmB06rv8=')).toBe(CORE_EXAMPLE)
    expect(() => formatTurnMetadata('2001:db8::1', 3478, '1', 'p')).toThrow(/IPv6/)
    expect(() => formatTurnMetadata('example.com', 3478, '1:bob', 'p')).toThrow(/timestamp/)
  })
  it('accepts relay URLs core accepts', () => {
    expect(parseIrohRelayUrl('https://chat.example.org').ok).toBe(true)
    expect(parseIrohRelayUrl('http://203.0.113.5:3340').ok).toBe(true)
    expect(parseIrohRelayUrl('chat.example.org').ok).toBe(false)
    expect(parseIrohRelayUrl('ftp://x.example').ok).toBe(false)
  })
})
