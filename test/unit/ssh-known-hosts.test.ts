import { createHmac } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import {
  entryMatches,
  formatKnownHostLine,
  hostLookupName,
  keyTypeOfBlob,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/ssh/known-hosts.js'

/** A fake SSH key blob: string type + string payload, as on the wire. */
function blob(type: string, payload: string): Buffer {
  const s = (x: string) => {
    const b = Buffer.from(x, 'latin1')
    const len = Buffer.alloc(4)
    len.writeUInt32BE(b.length)
    return Buffer.concat([len, b])
  }
  return Buffer.concat([s(type), s(payload)])
}
const ED_A = blob('ssh-ed25519', 'key-a')
const ED_B = blob('ssh-ed25519', 'key-b')
const ECDSA = blob('ecdsa-sha2-nistp256', 'key-c')
const b64 = (b: Buffer) => b.toString('base64')

function hashed(name: string, salt = Buffer.from('0123456789abcdefghij')): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('known_hosts', () => {
  test('parses plain, hashed, marked and commented lines with line numbers', () => {
    const text = [
      '# comment',
      '',
      `mail.example.org,192.0.2.1 ssh-ed25519 ${b64(ED_A)} comment here`,
      `${hashed('10.0.0.1')} ssh-ed25519 ${b64(ED_A)}`,
      `@revoked * ssh-ed25519 ${b64(ED_B)}`,
      `@cert-authority *.example.org ssh-ed25519 ${b64(ED_B)}`,
      'garbage',
    ].join('\n')
    const entries = parseKnownHosts(text)
    expect(entries.map((e) => [e.line, e.marker, e.patterns.length])).toEqual([
      [3, undefined, 2],
      [4, undefined, 1],
      [5, 'revoked', 1],
      [6, 'cert-authority', 1],
    ])
  })

  test('matches names: plain, [host]:port, wildcards, negation, hashed', () => {
    const [plain, hashedEntry, wild] = parseKnownHosts(
      [
        `a.example.org,[b.example.org]:2222 ssh-ed25519 ${b64(ED_A)}`,
        `${hashed('[10.0.0.1]:2222')} ssh-ed25519 ${b64(ED_A)}`,
        `*.example.org,!bad.example.org ssh-ed25519 ${b64(ED_A)}`,
      ].join('\n'),
    )
    expect(entryMatches(plain!, 'a.example.org')).toBe(true)
    expect(entryMatches(plain!, 'A.EXAMPLE.ORG')).toBe(true)
    expect(entryMatches(plain!, 'b.example.org')).toBe(false)
    expect(entryMatches(plain!, hostLookupName('b.example.org', 2222))).toBe(true)
    expect(entryMatches(hashedEntry!, '[10.0.0.1]:2222')).toBe(true)
    expect(entryMatches(hashedEntry!, '10.0.0.1')).toBe(false)
    expect(entryMatches(wild!, 'mx.example.org')).toBe(true)
    expect(entryMatches(wild!, 'bad.example.org')).toBe(false)
    expect(entryMatches(wild!, 'example.org.evil')).toBe(false)
  })

  test('verdicts: known, changed (other key of the same or of another type), unknown (no key), revoked', () => {
    const entries = parseKnownHosts(
      [
        `h1 ssh-ed25519 ${b64(ED_A)}`,
        `h2 ecdsa-sha2-nistp256 ${b64(ECDSA)}`,
        `@revoked h3 ssh-ed25519 ${b64(ED_A)}`,
      ].join('\n'),
    )
    expect(verifyHostKey(entries, ['h1'], ED_A)).toEqual({ status: 'known', line: 1 })
    expect(verifyHostKey(entries, ['h1'], ED_B)).toEqual({
      status: 'changed',
      line: 1,
      knownType: 'ssh-ed25519',
      offeredType: 'ssh-ed25519',
    })
    // Issue 9: a host known with one type that offers another type is changed, not new.
    expect(verifyHostKey(entries, ['h2'], ED_A)).toEqual({
      status: 'changed',
      line: 2,
      knownType: 'ecdsa-sha2-nistp256',
      offeredType: 'ssh-ed25519',
    })
    expect(verifyHostKey(entries, ['h1'], ECDSA)).toMatchObject({ status: 'changed', line: 1 })
    // Only a revoked key on file: another key is new, the revoked one is refused.
    expect(verifyHostKey(entries, ['h3'], ED_B)).toEqual({ status: 'unknown' })
    expect(verifyHostKey(entries, ['nobody'], ED_A)).toEqual({ status: 'unknown' })
    expect(verifyHostKey(entries, ['h3'], ED_A)).toEqual({ status: 'revoked', line: 3 })
    expect(knownKeyTypes(entries, ['h2'])).toEqual(['ecdsa-sha2-nistp256'])
  })

  test('a recorded line is hashed and verifies', () => {
    expect(keyTypeOfBlob(ED_A)).toBe('ssh-ed25519')
    const line = formatKnownHostLine('[10.0.0.9]:2222', ED_A)
    expect(line).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /)
    expect(verifyHostKey(parseKnownHosts(line), ['[10.0.0.9]:2222'], ED_A).status).toBe('known')
    expect(formatKnownHostLine('h', ED_A, false)).toBe(`h ssh-ed25519 ${b64(ED_A)}`)
  })
})
