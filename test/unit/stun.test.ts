import { crc32 as zlibCrc32 } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  Attr,
  attr,
  crc32,
  decodeErrorCode,
  decodeMessage,
  decodeXorAddress,
  encodeMessage,
  frameLength,
  getAttribute,
  getErrorCode,
  getLifetime,
  getString,
  getXorAddress,
  longTermKey,
  MAGIC_COOKIE,
  Method,
  messageType,
  newTransactionId,
  StunDecodeError,
  shortTermKey,
  splitMessageType,
  verifyFingerprint,
  verifyMessageIntegrity,
} from '../../src/protocols/stun.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

// RFC 5769 test vectors.
const SHORT_TERM_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt'
const TXID = hex('b7e7a701 bc34d686 fa87dfae')

/** §2.1 Sample Request: SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MI, FINGERPRINT. */
const SAMPLE_REQUEST = hex(`
  00010058 2112a442 b7e7a701 bc34d686 fa87dfae
  80220010 5354554e 20746573 7420636c 69656e74
  00240004 6e0001ff
  80290008 932ff9b1 51263b36
  00060009 6576746a 3a683676 59202020
  00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
  80280004 e57a3bcf`)

/** §2.2 Sample IPv4 Response: 192.0.2.1:32853. */
const IPV4_RESPONSE = hex(`
  0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200008 0001a147 e112a643
  00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  80280004 c07d4c96`)

/** §2.3 Sample IPv6 Response: [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
const IPV6_RESPONSE = hex(`
  01010048 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
  00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
  80280004 c8fb0b4c`)

/** §2.4 Sample Request with Long-Term Authentication (no FINGERPRINT). */
const LONG_TERM_REQUEST = hex(`
  00010060 2112a442 78ad3433 c6ad72c0 29da412e
  00060012 e3839ee3 8388e383 aae38383 e382afe3 82b90000
  0015001c 662f2f34 39396b39 35346436 4f4c3334 6f4c3946 53547679 36347341
  0014000b 6578616d 706c652e 6f726700
  00080014 f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666`)
const LT_USERNAME = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9'
const LT_PASSWORD = 'TheMatrIX'
const LT_NONCE = 'f//499k954d6OL34oL9FSTvy64sA'
const LT_REALM = 'example.org'

describe('RFC 5769 test vectors', () => {
  it('§2.1 sample request: decodes, integrity and fingerprint verify, re-encodes byte for byte', () => {
    const msg = decodeMessage(SAMPLE_REQUEST)
    expect(splitMessageType(msg.type)).toEqual({ method: Method.Binding, cls: 'request' })
    expect(msg.transactionId).toEqual(TXID)
    expect(getString(msg, Attr.SOFTWARE)).toBe('STUN test client')
    expect(getString(msg, Attr.USERNAME)).toBe('evtj:h6vY')
    expect(verifyMessageIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(true)
    expect(verifyMessageIntegrity(msg, shortTermKey('wrong'))).toBe(false)
    expect(verifyFingerprint(msg)).toBe(true)

    const again = encodeMessage(
      {
        type: messageType(Method.Binding, 'request'),
        transactionId: TXID,
        attributes: [
          attr.software('STUN test client'),
          { type: 0x0024, value: hex('6e0001ff') },
          { type: 0x8029, value: hex('932ff9b1 51263b36') },
          attr.username('evtj:h6vY'),
        ],
      },
      { integrityKey: shortTermKey(SHORT_TERM_PASSWORD), fingerprint: true, padByte: 0x20 },
    )
    expect(again.toString('hex')).toBe(SAMPLE_REQUEST.toString('hex'))
  })

  it('§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853, integrity and fingerprint', () => {
    const msg = decodeMessage(IPV4_RESPONSE)
    expect(splitMessageType(msg.type)).toEqual({ method: Method.Binding, cls: 'success' })
    expect(getString(msg, Attr.SOFTWARE)).toBe('test vector')
    expect(getXorAddress(msg, Attr.XOR_MAPPED_ADDRESS)).toEqual({ address: '192.0.2.1', port: 32853, family: 'IPv4' })
    expect(verifyMessageIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(true)
    expect(verifyFingerprint(msg)).toBe(true)

    const again = encodeMessage(
      {
        type: messageType(Method.Binding, 'success'),
        transactionId: TXID,
        attributes: [
          attr.software('test vector'),
          attr.xorAddress(Attr.XOR_MAPPED_ADDRESS, { address: '192.0.2.1', port: 32853 }, TXID),
        ],
      },
      { integrityKey: shortTermKey(SHORT_TERM_PASSWORD), fingerprint: true, padByte: 0x20 },
    )
    expect(again.toString('hex')).toBe(IPV4_RESPONSE.toString('hex'))
  })

  it('§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
    const msg = decodeMessage(IPV6_RESPONSE)
    expect(getXorAddress(msg, Attr.XOR_MAPPED_ADDRESS)).toEqual({
      address: '2001:db8:1234:5678:11:2233:4455:6677',
      port: 32853,
      family: 'IPv6',
    })
    expect(verifyMessageIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(true)
    expect(verifyFingerprint(msg)).toBe(true)

    const again = encodeMessage(
      {
        type: messageType(Method.Binding, 'success'),
        transactionId: TXID,
        attributes: [
          attr.software('test vector'),
          attr.xorAddress(
            Attr.XOR_MAPPED_ADDRESS,
            { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 },
            TXID,
          ),
        ],
      },
      { integrityKey: shortTermKey(SHORT_TERM_PASSWORD), fingerprint: true, padByte: 0x20 },
    )
    expect(again.toString('hex')).toBe(IPV6_RESPONSE.toString('hex'))
  })

  it('§2.4 long-term request: key = MD5(username:realm:password), integrity verifies, re-encodes exactly', () => {
    const msg = decodeMessage(LONG_TERM_REQUEST)
    expect(getString(msg, Attr.USERNAME)).toBe(LT_USERNAME)
    expect(getString(msg, Attr.NONCE)).toBe(LT_NONCE)
    expect(getString(msg, Attr.REALM)).toBe(LT_REALM)
    const key = longTermKey(LT_USERNAME, LT_REALM, LT_PASSWORD)
    expect(verifyMessageIntegrity(msg, key)).toBe(true)
    expect(verifyMessageIntegrity(msg, longTermKey(LT_USERNAME, LT_REALM, 'TheMatrix'))).toBe(false)
    expect(verifyFingerprint(msg)).toBeUndefined()

    const again = encodeMessage(
      {
        type: messageType(Method.Binding, 'request'),
        transactionId: msg.transactionId,
        attributes: [attr.username(LT_USERNAME), attr.nonce(LT_NONCE), attr.realm(LT_REALM)],
      },
      { integrityKey: key },
    )
    expect(again.toString('hex')).toBe(LONG_TERM_REQUEST.toString('hex'))
  })

  it('a flipped bit anywhere before MESSAGE-INTEGRITY breaks it; one in the FINGERPRINT breaks only that', () => {
    const key = shortTermKey(SHORT_TERM_PASSWORD)
    const tampered = Buffer.from(SAMPLE_REQUEST)
    tampered[30] = (tampered[30] as number) ^ 0x01 // inside SOFTWARE
    const m1 = decodeMessage(tampered)
    expect(verifyMessageIntegrity(m1, key)).toBe(false)
    expect(verifyFingerprint(m1)).toBe(false)

    const fp = Buffer.from(SAMPLE_REQUEST)
    fp[fp.length - 1] = (fp[fp.length - 1] as number) ^ 0x80
    const m2 = decodeMessage(fp)
    expect(verifyMessageIntegrity(m2, key)).toBe(true)
    expect(verifyFingerprint(m2)).toBe(false)
  })
})

describe('message type', () => {
  it('interleaves method and class bits as RFC 8489 §5 and RFC 8656 list them', () => {
    expect(messageType(Method.Binding, 'request')).toBe(0x0001)
    expect(messageType(Method.Binding, 'success')).toBe(0x0101)
    expect(messageType(Method.Allocate, 'request')).toBe(0x0003)
    expect(messageType(Method.Allocate, 'success')).toBe(0x0103)
    expect(messageType(Method.Allocate, 'error')).toBe(0x0113)
    expect(messageType(Method.Refresh, 'error')).toBe(0x0114)
    expect(messageType(Method.Send, 'indication')).toBe(0x0016)
    expect(messageType(Method.CreatePermission, 'request')).toBe(0x0008)
    for (const method of [0x001, 0x0ff, 0xabc, 0xfff]) {
      for (const cls of ['request', 'indication', 'success', 'error'] as const) {
        expect(splitMessageType(messageType(method, cls))).toEqual({ method, cls })
      }
    }
  })
})

describe('CRC-32', () => {
  it('matches the standard check value and zlib', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926)
    const data = Buffer.from(SAMPLE_REQUEST)
    if (typeof zlibCrc32 === 'function') expect(crc32(data)).toBe(zlibCrc32(data))
  })
})

describe('round trip', () => {
  it('an authenticated Allocate request with every TURN attribute', () => {
    const txid = newTransactionId()
    const key = longTermKey('1767225600', 'chat.example.org', 'c2VjcmV0IHBhc3N3b3JkIGhlcmU=')
    const buf = encodeMessage(
      {
        type: messageType(Method.Allocate, 'request'),
        transactionId: txid,
        attributes: [
          attr.requestedTransport(),
          attr.lifetime(600),
          attr.username('1767225600'),
          attr.realm('chat.example.org'),
          attr.nonce('abc'),
          attr.xorAddress(Attr.XOR_PEER_ADDRESS, { address: '::ffff:10.0.0.1', port: 1 }, txid),
          attr.xorAddress(Attr.XOR_RELAYED_ADDRESS, { address: '203.0.113.5', port: 49160 }, txid),
          attr.xorAddress(Attr.XOR_MAPPED_ADDRESS, { address: 'fe80::1', port: 65535 }, txid),
        ],
      },
      { integrityKey: key, fingerprint: true },
    )
    expect(buf.length % 4).toBe(0)
    expect(frameLength(buf)).toBe(buf.length)
    const msg = decodeMessage(buf)
    expect(msg.type).toBe(0x0003)
    expect(getAttribute(msg, Attr.REQUESTED_TRANSPORT)).toEqual(Buffer.from([17, 0, 0, 0]))
    expect(getLifetime(msg)).toBe(600)
    expect(getString(msg, Attr.NONCE)).toBe('abc')
    expect(getXorAddress(msg, Attr.XOR_PEER_ADDRESS)).toEqual({ address: '::ffff:a00:1', port: 1, family: 'IPv6' })
    expect(getXorAddress(msg, Attr.XOR_RELAYED_ADDRESS)).toEqual({
      address: '203.0.113.5',
      port: 49160,
      family: 'IPv4',
    })
    expect(getXorAddress(msg, Attr.XOR_MAPPED_ADDRESS)).toEqual({ address: 'fe80::1', port: 65535, family: 'IPv6' })
    expect(verifyMessageIntegrity(msg, key)).toBe(true)
    expect(verifyFingerprint(msg)).toBe(true)
  })

  it('ERROR-CODE: class*100+number and reason', () => {
    const txid = newTransactionId()
    for (const code of [300, 401, 438, 441, 486, 508, 699]) {
      const buf = encodeMessage({
        type: messageType(Method.Allocate, 'error'),
        transactionId: txid,
        attributes: [attr.errorCode(code, `reason ${code} ü`), attr.realm('r'), attr.nonce('n')],
      })
      expect(getErrorCode(decodeMessage(buf))).toEqual({ code, reason: `reason ${code} ü` })
    }
    expect(
      getErrorCode(
        decodeMessage(encodeMessage({ type: 0x0113, transactionId: txid, attributes: [attr.errorCode(438)] })),
      ),
    ).toEqual({
      code: 438,
      reason: 'Stale Nonce',
    })
    expect(() => attr.errorCode(200)).toThrow(RangeError)
  })

  it('attributes after MESSAGE-INTEGRITY are ignored, FINGERPRINT is kept', () => {
    const txid = newTransactionId()
    const signed = encodeMessage(
      { type: 0x0001, transactionId: txid, attributes: [attr.username('u')] },
      { integrityKey: shortTermKey('p') },
    )
    const extra = Buffer.concat([signed, hex('80220004 61626364')])
    extra.writeUInt16BE(extra.length - 20, 2)
    const msg = decodeMessage(extra)
    expect(getString(msg, Attr.SOFTWARE)).toBeUndefined()
    expect(verifyMessageIntegrity(msg, shortTermKey('p'))).toBe(true)
  })
})

describe('malformed input is rejected with StunDecodeError', () => {
  const valid = Buffer.from(IPV4_RESPONSE)
  const cases: Array<[string, Buffer, RegExp]> = [
    ['empty', Buffer.alloc(0), /shorter than the 20-byte header/],
    ['short header', valid.subarray(0, 19), /shorter than the 20-byte header/],
    ['top bits set', Buffer.concat([hex('c1'), valid.subarray(1)]), /first two bits/],
    ['bad cookie', Buffer.concat([valid.subarray(0, 4), hex('2112a443'), valid.subarray(8)]), /magic cookie/],
    ['length not a multiple of 4', withLength(valid, 0x3d), /multiple of 4/],
    ['length longer than the data', withLength(valid, 0x40), /header says 84 bytes but the message has 80/],
    ['trailing bytes', Buffer.concat([valid, Buffer.alloc(4)]), /header says 80 bytes but the message has 84/],
    ['attribute past the end', patch(valid, 22, hex('00ff')), /claims 255 bytes, past the end/],
    ['truncated attribute header', withLength(Buffer.concat([valid.subarray(0, 20), hex('0000')]), 2), /multiple of 4/],
    ['short MESSAGE-INTEGRITY', mi(16), /MESSAGE-INTEGRITY is 16 bytes, expected 20/],
    ['FINGERPRINT not last', fpNotLast(), /FINGERPRINT is not the last attribute/],
  ]
  for (const [name, buf, message] of cases) {
    it(name, () => {
      expect(() => decodeMessage(buf)).toThrow(StunDecodeError)
      expect(() => decodeMessage(buf)).toThrow(message)
    })
  }

  it('random bytes never throw anything but StunDecodeError', () => {
    let seed = 42
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed & 0xff
    }
    for (let i = 0; i < 2000; i++) {
      const buf = Buffer.from(valid)
      for (let k = 0; k < 1 + (i % 6); k++) buf[rnd() % buf.length] = rnd()
      try {
        const msg = decodeMessage(buf)
        for (const a of msg.attributes) {
          try {
            if (a.type === Attr.XOR_MAPPED_ADDRESS) decodeXorAddress(a.value, msg.transactionId)
            if (a.type === Attr.ERROR_CODE) decodeErrorCode(a.value)
            getString(msg, Attr.SOFTWARE)
          } catch (err) {
            expect(err).toBeInstanceOf(StunDecodeError)
          }
        }
      } catch (err) {
        expect(err).toBeInstanceOf(StunDecodeError)
      }
    }
  })

  it('attribute values: address family, sizes, error class, lifetime, UTF-8', () => {
    expect(() => decodeXorAddress(hex('0003a147 e112a643'), TXID)).toThrow(/unknown address family 3/)
    expect(() => decodeXorAddress(hex('0001a147 e112a6'), TXID)).toThrow(/expected 8/)
    expect(() => decodeXorAddress(hex('0002a147 e112a643'), TXID)).toThrow(/expected 20/)
    expect(() => decodeXorAddress(hex('0001'), TXID)).toThrow(/at least 4/)
    expect(() => decodeErrorCode(hex('000002 00'))).toThrow(/class 2 number 0 is out of range/)
    expect(() => decodeErrorCode(hex('00000464'))).toThrow(/number 100 is out of range/)
    expect(() => decodeErrorCode(hex('0000'))).toThrow(/at least 4/)
    const badUtf8 = encodeMessage({
      type: 1,
      transactionId: TXID,
      attributes: [{ type: Attr.REALM, value: hex('c328') }],
    })
    expect(() => getString(decodeMessage(badUtf8), Attr.REALM)).toThrow(/not valid UTF-8/)
    const badLifetime = encodeMessage({
      type: 1,
      transactionId: TXID,
      attributes: [{ type: Attr.LIFETIME, value: hex('01') }],
    })
    expect(() => getLifetime(decodeMessage(badLifetime))).toThrow(/LIFETIME is 1 bytes/)
  })
})

describe('stream framing', () => {
  it('needs 4 bytes, then knows the whole frame length', () => {
    expect(frameLength(IPV4_RESPONSE.subarray(0, 3))).toBeUndefined()
    expect(frameLength(IPV4_RESPONSE.subarray(0, 4))).toBe(IPV4_RESPONSE.length)
    expect(frameLength(Buffer.concat([IPV4_RESPONSE, SAMPLE_REQUEST]))).toBe(IPV4_RESPONSE.length)
  })
  it('ChannelData frames are padded to 4 over streams', () => {
    expect(frameLength(hex('40000005'))).toBe(12)
    expect(frameLength(hex('40000008'))).toBe(12)
  })
  it('rejects bytes that are neither STUN nor ChannelData, and odd STUN lengths', () => {
    expect(() => frameLength(hex('c0000000'))).toThrow(StunDecodeError)
    expect(() => frameLength(hex('80000000'))).toThrow(/neither a STUN message nor ChannelData/)
    expect(() => frameLength(hex('00010003'))).toThrow(/out of sync/)
  })
})

it('the magic cookie is 0x2112A442', () => {
  expect(MAGIC_COOKIE).toBe(0x2112a442)
})

function withLength(buf: Buffer, length: number): Buffer {
  const out = Buffer.from(buf)
  out.writeUInt16BE(length, 2)
  return out
}

function patch(buf: Buffer, at: number, bytes: Buffer): Buffer {
  const out = Buffer.from(buf)
  bytes.copy(out, at)
  return out
}

function mi(size: number): Buffer {
  const body = Buffer.concat([hex('0008'), Buffer.from([0, size]), Buffer.alloc(size)])
  return Buffer.concat([withLength(Buffer.from(IPV4_RESPONSE.subarray(0, 20)), body.length), body])
}

function fpNotLast(): Buffer {
  const body = hex('80280004 00000000 80220004 61626364')
  return Buffer.concat([withLength(Buffer.from(IPV4_RESPONSE.subarray(0, 20)), body.length), body])
}
