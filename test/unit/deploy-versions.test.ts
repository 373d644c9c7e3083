import { describe, expect, test } from 'vitest'
import { dovecotMajor, upstreamMajorMinor } from '../../src/deploy/versions.js'

describe('package versions a host will run', () => {
  test('Debian version strings', () => {
    expect(upstreamMajorMinor('1:2.4.1+dfsg1-6+deb13u7')).toEqual([2, 4])
    expect(upstreamMajorMinor('1:2.3.19.1+dfsg1-2.1+deb12u7')).toEqual([2, 3])
    expect(upstreamMajorMinor('3.10.13-0+deb13u1')).toEqual([3, 10])
    expect(upstreamMajorMinor('')).toBeUndefined()
  })

  test('dovecot: the installed one, else the release ships', () => {
    expect(dovecotMajor('12', undefined)).toBe('2.3')
    expect(dovecotMajor('13', undefined)).toBe('2.4')
    // Upgraded in place, dovecot-core 2.4 already installed; or 13 with 2.3 held back.
    expect(dovecotMajor('13', '1:2.4.1+dfsg1-6+deb13u7')).toBe('2.4')
    expect(dovecotMajor('13', '1:2.3.19.1+dfsg1-2.1+deb12u7')).toBe('2.3')
    expect(dovecotMajor('12', '1:2.3.19.1+dfsg1-2.1+deb12u7')).toBe('2.3')
  })
})
