import { describe, expect, it } from 'vitest'
import { decodeMetadataValue, type ImapToken, parseMetadataResponse } from '../../src/doctor/imap-metadata.js'

describe('GETMETADATA answers as imapflow parses them', () => {
  it('decodes STRING, LITERAL (Buffer) and NIL values', () => {
    expect(decodeMetadataValue({ type: 'STRING', value: 'https://r.example' })).toBe('https://r.example')
    expect(decodeMetadataValue({ type: 'LITERAL', value: Buffer.from('h:3478:1:p=') })).toBe('h:3478:1:p=')
    expect(decodeMetadataValue(null)).toBeNull()
    expect(decodeMetadataValue(undefined)).toBeNull()
  })

  it('reads key/value pairs of one untagged METADATA response (the shape dovecot sends)', () => {
    // * METADATA "" (/shared/vendor/deltachat/turn {11}\r\nh:3478:1:p= /shared/vendor/deltachat/irohrelay NIL)
    const attributes: ImapToken[] = [
      { type: 'STRING', value: '' },
      [
        { type: 'ATOM', value: '/shared/vendor/deltachat/turn' },
        { type: 'LITERAL', value: Buffer.from('h:3478:1:p=') },
        { type: 'ATOM', value: '/shared/vendor/deltachat/irohrelay' },
        null,
      ],
    ]
    expect(parseMetadataResponse(attributes)).toEqual({
      '/shared/vendor/deltachat/turn': 'h:3478:1:p=',
      '/shared/vendor/deltachat/irohrelay': null,
    })
  })

  it('merges several responses and ignores a malformed one', () => {
    const into = parseMetadataResponse([
      { type: 'STRING', value: '' },
      [
        { type: 'ATOM', value: '/a' },
        { type: 'STRING', value: '1' },
      ],
    ])
    parseMetadataResponse(
      [
        { type: 'STRING', value: '' },
        { type: 'ATOM', value: 'oops' },
      ],
      into,
    )
    parseMetadataResponse(
      [
        { type: 'STRING', value: '' },
        [
          { type: 'ATOM', value: '/b' },
          { type: 'STRING', value: '2' },
        ],
      ],
      into,
    )
    expect(into).toEqual({ '/a': '1', '/b': '2' })
  })
})
