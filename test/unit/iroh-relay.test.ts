import { describe, expect, it } from 'vitest'
import {
  buildClientInfo,
  buildUpgradeRequest,
  CLIENT_INFO_LEN,
  checkUpgradeResponse,
  decodeVarint,
  decodeWsMessage,
  encodeFrame,
  encodeRecvPacket,
  encodeSendPacket,
  encodeVarint,
  encodeWsFrame,
  encodeWsMessage,
  FrameDecoder,
  FrameType,
  frameTypeName,
  generateKeyPair,
  isV1ServerChallenge,
  keyFromHex,
  keyPairFromSeed,
  keyToHex,
  MAGIC,
  MAX_FRAME_SIZE,
  parseClientInfo,
  parseHttpRequestHead,
  parseHttpResponseHead,
  parsePeerGone,
  parsePingPayload,
  parseRecvPacket,
  parseRestarting,
  parseSendPacket,
  RelayProtocolError,
  selectedSubprotocol,
  WsDecoder,
  WsOpcode,
  webSocketAccept,
} from '../../src/protocols/iroh-relay.js'

// RFC 8032 section 7.1, test 1: secret key and its public key.
const RFC_SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex')
const RFC_PUB = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'

describe('frame types', () => {
  it('has the 0.35 numbers', () => {
    expect(FrameType).toMatchObject({
      ClientInfo: 2,
      SendPacket: 4,
      RecvPacket: 5,
      KeepAlive: 6,
      NotePreferred: 7,
      PeerGone: 8,
      Ping: 12,
      Pong: 13,
      Health: 14,
      Restarting: 15,
    })
    expect(frameTypeName(13)).toBe('Pong')
    expect(frameTypeName(200)).toBe('unknown(200)')
  })
})

describe('keys', () => {
  it('derives the RFC 8032 public key from a seed', () => {
    expect(keyToHex(keyPairFromSeed(RFC_SEED).publicKey)).toBe(RFC_PUB)
  })
  it('generates 32-byte public keys', () => {
    const a = generateKeyPair()
    expect(a.publicKey).toHaveLength(32)
    expect(a.publicKey.equals(generateKeyPair().publicKey)).toBe(false)
  })
  it('parses hex node ids and rejects others', () => {
    expect(keyToHex(keyFromHex(RFC_PUB))).toBe(RFC_PUB)
    expect(() => keyFromHex('abc')).toThrow(RelayProtocolError)
    expect(() => keyPairFromSeed(Buffer.alloc(31))).toThrow(/32 bytes/)
  })
})

describe('ClientInfo', () => {
  const keys = keyPairFromSeed(RFC_SEED)
  const info = buildClientInfo(keys)

  it('is MAGIC + key + signature + 0x03, 106 bytes', () => {
    expect(MAGIC.toString('hex')).toBe('52454c4159f09f9491')
    expect(info).toHaveLength(106)
    expect(CLIENT_INFO_LEN).toBe(106)
    expect(info.subarray(0, 9).equals(MAGIC)).toBe(true)
    expect(keyToHex(info.subarray(9, 41))).toBe(RFC_PUB)
    expect(info[105]).toBe(0x03)
  })

  it('is framed as 02 00 00 00 6A and as a 107-byte websocket message', () => {
    const framed = encodeFrame(FrameType.ClientInfo, info)
    expect(framed.subarray(0, 5).toString('hex')).toBe('020000006a')
    expect(framed).toHaveLength(111)
    const ws = encodeWsMessage(FrameType.ClientInfo, info)
    expect(ws).toHaveLength(107)
    expect(ws[0]).toBe(2)
  })

  it('round-trips with a valid signature (ed25519 is deterministic)', () => {
    const parsed = parseClientInfo(info)
    expect(parsed.version).toBe(3)
    expect(parsed.signatureValid).toBe(true)
    expect(parsed.message.toString('hex')).toBe('03')
    expect(buildClientInfo(keys).equals(info)).toBe(true)
  })

  it('detects a bad signature, a wrong key and a wrong version', () => {
    const tampered = Buffer.from(info)
    tampered[50] = tampered[50]! ^ 1
    expect(parseClientInfo(tampered).signatureValid).toBe(false)
    const otherKey = Buffer.from(info)
    generateKeyPair().publicKey.copy(otherKey, 9)
    expect(parseClientInfo(otherKey).signatureValid).toBe(false)
    const v4 = buildClientInfo(keys, 4)
    expect(parseClientInfo(v4)).toMatchObject({ version: 4, signatureValid: true })
  })

  it('rejects malformed payloads', () => {
    expect(() => parseClientInfo(info.subarray(0, 105))).toThrow(/106/)
    const badMagic = Buffer.from(info)
    badMagic[0] = 0x51
    expect(() => parseClientInfo(badMagic)).toThrow(/magic/)
    expect(() => parseClientInfo(Buffer.concat([info, Buffer.from([1])]))).toThrow(/trailing/)
  })
})

describe('varint', () => {
  it('encodes postcard LEB128', () => {
    expect(encodeVarint(3).toString('hex')).toBe('03')
    expect(encodeVarint(300).toString('hex')).toBe('ac02')
    expect(decodeVarint(Buffer.from('ac02', 'hex'))).toEqual({ value: 300, length: 2 })
    expect(() => decodeVarint(Buffer.from('80', 'hex'))).toThrow(RelayProtocolError)
  })
})

describe('derp framing and FrameDecoder', () => {
  const ping = encodeFrame(FrameType.Ping, Buffer.from('0102030405060708', 'hex'))

  it('encodes [type][len u32 BE][payload]', () => {
    expect(ping.toString('hex')).toBe('0c000000080102030405060708')
    expect(encodeFrame(FrameType.KeepAlive).toString('hex')).toBe('0600000000')
  })

  it('decodes a frame split byte by byte', () => {
    const d = new FrameDecoder()
    const frames = [...ping].flatMap((b) => d.push(Buffer.from([b])))
    expect(frames).toHaveLength(1)
    expect(frames[0]).toEqual({ type: 12, payload: Buffer.from('0102030405060708', 'hex') })
    expect(d.pending).toBe(0)
  })

  it('decodes merged frames and keeps the remainder', () => {
    const d = new FrameDecoder()
    const two = Buffer.concat([ping, encodeFrame(FrameType.Pong, Buffer.alloc(8, 7)), ping.subarray(0, 3)])
    const frames = d.push(two)
    expect(frames.map((f) => f.type)).toEqual([12, 13])
    expect(d.pending).toBe(3)
    expect(d.push(ping.subarray(3))).toHaveLength(1)
  })

  it('rejects a frame longer than 1 MiB from its header alone', () => {
    const d = new FrameDecoder()
    const head = Buffer.from([4, 0, 0, 0, 0])
    head.writeUInt32BE(MAX_FRAME_SIZE + 1, 1)
    expect(() => d.push(head)).toThrow(/exceeds/)
    expect(() => encodeFrame(4, Buffer.alloc(MAX_FRAME_SIZE + 1))).toThrow(/exceeds/)
    expect(() => encodeFrame(256, Buffer.alloc(0))).toThrow(/range/)
  })
})

describe('packets and small frames', () => {
  const key = Buffer.alloc(32, 0xab)

  it('SendPacket and RecvPacket carry [key 32][data]', () => {
    const p = encodeSendPacket(key, Buffer.from('hi'))
    expect(p.toString('hex')).toBe(`${'ab'.repeat(32)}6869`)
    expect(parseSendPacket(p)).toEqual({ key, data: Buffer.from('hi') })
    expect(parseRecvPacket(encodeRecvPacket(key, Buffer.alloc(0)))).toEqual({ key, data: Buffer.alloc(0) })
    expect(() => parseRecvPacket(Buffer.alloc(31))).toThrow(/32-byte key/)
    expect(() => encodeSendPacket(Buffer.alloc(31), Buffer.alloc(1))).toThrow(/32 bytes/)
    expect(() => encodeSendPacket(key, Buffer.alloc(64 * 1024 + 1))).toThrow(/65536-byte maximum/)
  })

  it('Ping/Pong, PeerGone, Restarting', () => {
    expect(parsePingPayload(Buffer.alloc(8, 1))).toHaveLength(8)
    expect(() => parsePingPayload(Buffer.alloc(7))).toThrow(/8 bytes/)
    expect(parsePeerGone(key).equals(key)).toBe(true)
    expect(() => parsePeerGone(Buffer.alloc(33))).toThrow()
    expect(parseRestarting(Buffer.from('000003e800002710', 'hex'))).toEqual({ reconnectInMs: 1000, tryForMs: 10000 })
  })
})

describe('websocket variant', () => {
  it('a message is [type][payload] without a length', () => {
    expect(encodeWsMessage(FrameType.Ping, Buffer.alloc(8, 9)).toString('hex')).toBe(`0c${'09'.repeat(8)}`)
    expect(decodeWsMessage(Buffer.from('0d0102', 'hex'))).toEqual({ type: 13, payload: Buffer.from('0102', 'hex') })
    expect(() => decodeWsMessage(Buffer.alloc(0))).toThrow(/empty/)
  })

  it('RFC 6455 frames: masked client frames decode, lengths 7/16/64 bit', () => {
    const mask = Buffer.from('37fa213d', 'hex')
    // RFC 6455 section 5.7: a masked "Hello".
    expect(encodeWsFrame(WsOpcode.Text, Buffer.from('Hello'), mask).toString('hex')).toBe('818537fa213d7f9f4d5158')
    const d = new WsDecoder()
    for (const size of [5, 300, 70_000]) {
      const payload = Buffer.alloc(size, 5)
      const frame = encodeWsFrame(WsOpcode.Binary, payload, mask)
      const got = [...frame.subarray(0, 3)].flatMap((b) => d.push(Buffer.from([b]))).concat(d.push(frame.subarray(3)))
      expect(got).toEqual([{ opcode: 2, payload }])
    }
  })

  it('joins fragments and passes control frames through', () => {
    const d = new WsDecoder()
    const first = encodeWsFrame(WsOpcode.Binary, Buffer.from('ab'))
    first[0] = 0x02 // FIN cleared
    const ping = encodeWsFrame(WsOpcode.Ping, Buffer.from('p'))
    const last = encodeWsFrame(WsOpcode.Continuation, Buffer.from('cd'))
    expect(d.push(Buffer.concat([first, ping, last]))).toEqual([
      { opcode: 9, payload: Buffer.from('p') },
      { opcode: 2, payload: Buffer.from('abcd') },
    ])
    expect(() => new WsDecoder().push(last)).toThrow(/continuation/)
    expect(() => new WsDecoder().push(Buffer.from('c200', 'hex'))).toThrow(/reserved/)
  })

  it('computes Sec-WebSocket-Accept (RFC 6455 example)', () => {
    expect(webSocketAccept('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  })

  it('recognises a 1.x ServerChallenge', () => {
    expect(isV1ServerChallenge(Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 1)]))).toBe(true)
    expect(isV1ServerChallenge(encodeWsMessage(FrameType.Ping, Buffer.alloc(8)))).toBe(false)
  })
})

describe('HTTP upgrade', () => {
  it('builds the exact derp request a 0.35 client sends (no Connection header)', () => {
    expect(buildUpgradeRequest({ variant: 'derp', host: '127.0.0.1:3340' })).toBe(
      'GET /relay HTTP/1.1\r\nHost: 127.0.0.1:3340\r\nUpgrade: iroh derp http\r\n\r\n',
    )
  })

  it('builds a websocket request, with a subprotocol only when asked', () => {
    const plain = buildUpgradeRequest({ variant: 'websocket', host: 'h', wsKey: 'k==' })
    expect(plain).toContain(
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13',
    )
    expect(plain).not.toMatch(/Protocol/)
    const v1 = buildUpgradeRequest({ variant: 'websocket', host: 'h', wsKey: 'k==', subprotocols: ['iroh-relay-v1'] })
    expect(v1).toContain('Sec-WebSocket-Protocol: iroh-relay-v1\r\n')
    expect(() => buildUpgradeRequest({ variant: 'websocket', host: 'h' })).toThrow(/Key/)
  })

  it('parses a 101 head and says where the relay stream starts', () => {
    const raw = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: iroh derp http\r\n\r\n\x0c\x00')
    const head = parseHttpResponseHead(raw)!
    expect(head).toMatchObject({ status: 101, reason: 'Switching Protocols', headers: { upgrade: 'iroh derp http' } })
    expect(raw.subarray(head.headLength).toString('hex')).toBe('0c00')
    expect(checkUpgradeResponse(head, 'derp')).toEqual({ ok: true })
    expect(selectedSubprotocol(head)).toBeUndefined()
  })

  it('returns null for an incomplete head and throws for non-HTTP', () => {
    expect(parseHttpResponseHead(Buffer.from('HTTP/1.1 101 Switching'))).toBeNull()
    expect(() => parseHttpResponseHead(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not an HTTP response/)
  })

  it('checks status and Sec-WebSocket-Accept, and reports a selected subprotocol', () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ=='
    const good = parseHttpResponseHead(
      Buffer.from(
        'HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: iroh-relay-v1\r\n\r\n',
      ),
    )!
    expect(checkUpgradeResponse(good, 'websocket', key)).toEqual({ ok: true })
    expect(selectedSubprotocol(good)).toBe('iroh-relay-v1')
    const wrong = parseHttpResponseHead(Buffer.from('HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: x\r\n\r\n'))!
    expect(checkUpgradeResponse(wrong, 'websocket', key)).toMatchObject({ ok: false })
    const notFound = parseHttpResponseHead(Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n'))!
    expect(checkUpgradeResponse(notFound, 'derp')).toEqual({ ok: false, reason: 'status 404 Not Found' })
  })

  it('parses request heads (lower-case names, repeated headers joined)', () => {
    const req = parseHttpRequestHead(
      Buffer.from('GET /relay HTTP/1.1\r\nupgrade: iroh derp http\r\nX-A: 1\r\nx-a: 2\r\n\r\n'),
    )!
    expect(req).toMatchObject({ method: 'GET', path: '/relay', headers: { upgrade: 'iroh derp http', 'x-a': '1, 2' } })
    expect(parseHttpRequestHead(Buffer.from('GET /relay HTTP/1.1\r\n'))).toBeNull()
  })
})
