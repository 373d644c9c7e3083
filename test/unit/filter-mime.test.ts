/**
 * chatmail-filter's verdicts on whole messages: real ones a Delta Chat core 2.62 sent through a
 * deployed server (test/fixtures/mail/core-*.eml, scripts/capture-core-mail.ts: a Secure-Join
 * between two fresh accounts — vc-request-pubkey and vc-pubkey encrypted to the invite's secret
 * (SKESK), vc-request-with-auth and vc-contact-confirm to keys (PKESK); the step names are inside
 * the encryption, so they are named by their order — then a message and a group message), and
 * made from them: core's header over a cleartext body, malformed MIME, and a 30 MB message (core's
 * session keys, a 30 MB encrypted packet) streamed through in bounded memory; the cleartext
 * exceptions, plaintext, and malformed or disguised messages; in chunks of any size.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkMessage, type Envelope, RawMessageCheck } from '../../src/remote/chatmail-filter/mime.js'
import { armor, packet, pgpMimeMessage, plainMessage } from '../helpers/pgp-mime.js'

const DIR = join(import.meta.dirname, '..', 'fixtures', 'mail')
const fixture = (name: string) => readFileSync(join(DIR, name))
const coreFixtures = readdirSync(DIR).filter((f) => f.startsWith('core-'))

const A = 'alice@example.org'
const B = 'bob@example.net'
const out = (from = A, rcpts = [B]): Envelope => ({ direction: 'outgoing', mailFrom: from, rcpts })
const inc = (from = B, rcpts = [A], clientAddr = '192.0.2.7'): Envelope => ({
  direction: 'incoming',
  mailFrom: from,
  rcpts,
  clientAddr,
})
const fromOf = (raw: Buffer) => /^From:.*?<?([^<>\s]+@[^<>\s]+)>?\s*$/im.exec(raw.toString('latin1'))?.[1] as string

describe('real messages from Delta Chat core', () => {
  it('has fixtures captured from core', () => {
    expect(coreFixtures.length).toBeGreaterThanOrEqual(4)
  })
  for (const name of coreFixtures) {
    it(`${name}: accepted in both directions, in chunks of 1, 7, 4096 and 65536 bytes`, () => {
      const raw = fixture(name)
      const from = fromOf(raw)
      for (const size of [1, 7, 4096, 65536]) {
        const o = checkMessage(raw, out(from), size)
        expect(o, `outgoing, chunks of ${size}`).toMatchObject({ accept: true })
        // Incoming from the server its From names (user@[IP] must come from IP).
        const ip = /@\[(.*)\]$/.exec(from)?.[1] ?? '192.0.2.7'
        expect(checkMessage(raw, inc(from, [B], ip), size), `incoming, chunks of ${size}`).toMatchObject({
          accept: true,
        })
      }
    })
  }
  it('the same messages with their armored data changed are refused', () => {
    for (const name of coreFixtures) {
      const text = fixture(name).toString('latin1')
      if (!/multipart\/encrypted/i.test(text)) continue
      const from = fromOf(fixture(name))
      // Cut the armored data short: the encrypted packet no longer ends where the data does.
      const cut = text.replace(
        /(-----BEGIN PGP MESSAGE-----\r?\n(?:.*\r?\n)*?\r?\n)((?:[A-Za-z0-9+/]{64,}\r?\n){2})/,
        '$1',
      )
      expect(cut).not.toBe(text)
      expect(checkMessage(Buffer.from(cut, 'latin1'), out(from))).toMatchObject({ accept: false, code: '523' })
    }
  })
})

/** A core message's parts: its header, boundary, armored data (decoded) and armor line width. */
function coreParts(name: string) {
  const text = fixture(name).toString('latin1').replace(/\r?\n/g, '\r\n')
  const sep = text.indexOf('\r\n\r\n')
  const m = /-----BEGIN PGP MESSAGE-----\r\n([\s\S]*?)-----END PGP MESSAGE-----/.exec(text) as RegExpExecArray
  const lines = (m[1] as string).split('\r\n').filter((l) => l !== '' && !l.startsWith('='))
  return {
    text,
    head: text.slice(0, sep),
    from: fromOf(Buffer.from(text, 'latin1')),
    boundary: /boundary="([^"]+)"/.exec(text)?.[1] as string,
    packets: Buffer.from(lines.join(''), 'base64'),
    width: (lines[0] as string).length,
  }
}

/** Splits OpenPGP data into its packets (new-format headers with fixed lengths, as core writes them). */
function splitPackets(b: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < b.length; ) {
    const o = b[i + 1] as number
    const [len, head] =
      o < 192 ? [o, 2] : o < 224 ? [((o - 192) << 8) + (b[i + 2] as number) + 192, 3] : [b.readUInt32BE(i + 2), 6]
    out.push(b.subarray(i, i + head + len))
    i += head + len
  }
  return out
}

describe("core's messages, made plaintext or malformed", () => {
  const names = coreFixtures.filter((n) => /multipart\/encrypted/i.test(fixture(n).toString('latin1')))
  it('core writes PKESK/SKESK packets then one SEIPD, in armor lines of 64', () => {
    expect(names.length).toBeGreaterThanOrEqual(6)
    for (const name of names) {
      const { packets, width } = coreParts(name)
      const tags = splitPackets(packets).map((p) => (p[0] as number) & 0x3f)
      expect(tags[tags.length - 1], name).toBe(18)
      expect(tags.slice(0, -1).every((t) => t === 1 || t === 3)).toBe(true)
      expect(width).toBe(64)
    }
  })

  it("core's header with a cleartext body (what core sends to a contact without a key) is refused, both ways", () => {
    for (const name of names) {
      const { head, from } = coreParts(name)
      const plain = `${head.replace(/^Content-Type:.*(\r\n[ \t].*)*/im, 'Content-Type: text/plain; charset="utf-8"; format=flowed; delsp=no')}\r\n\r\nHello in the clear\r\n`
      for (const env of [out(from), inc(from, [B], /@\[(.*)\]$/.exec(from)?.[1])])
        expect(checkMessage(Buffer.from(plain, 'latin1'), env), name).toMatchObject({
          accept: false,
          code: '523',
          reason: expect.stringMatching(/text\/plain is not multipart\/encrypted/),
        })
    }
  })

  it('malformed MIME made from each core message is refused with its reason', () => {
    for (const name of names) {
      const { text, from, boundary } = coreParts(name)
      const close = `--${boundary}--`
      const cases: [string, RegExp][] = [
        [text.slice(0, text.indexOf(close)), /ends before its closing boundary/],
        [text.replace(`boundary="${boundary}"`, 'boundary="other"'), /no MIME part found/],
        [
          text.replace(/^Content-Type: multipart\/encrypted.*$/im, (l) => `${l}\r\nContent-Type: text/plain`),
          /two content-type headers/,
        ],
        [text.replace('\r\nVersion: 1\r\n', '\r\nVersion: 2\r\n'), /does not say "Version: 1"/],
        [
          text.replace('Content-Type: application/octet-stream', 'Content-Type: text/plain'),
          /second part is text\/plain/,
        ],
        [
          text.replace('-----BEGIN PGP MESSAGE-----\r\n', `-----BEGIN PGP MESSAGE-----\r\n${'A'.repeat(1200)}\r\n`),
          /longer than 998/,
        ],
        [
          text.replace(close, `--${boundary}\r\nContent-Type: text/plain\r\n\r\nhello\r\n${close}`),
          /more than two parts/,
        ],
        [text.replace(/^--[^\r]+\r\n/m, ''), /first part is application\/octet-stream/],
      ]
      for (const [raw, reason] of cases) {
        const v = checkMessage(Buffer.from(raw, 'latin1'), out(from))
        expect(v.accept, `${name}: ${reason}`).toBe(false)
        expect(!v.accept && v.reason, name).toMatch(reason)
      }
    }
  })
})

describe('cleartext exceptions', () => {
  it('a plaintext message is refused, with the reason, both ways', () => {
    const o = checkMessage(fixture('plain.eml'), out())
    expect(o).toMatchObject({ accept: false, code: '523', status: '5.7.1' })
    expect(!o.accept && o.reason).toMatch(/Encryption Needed.*text\/plain is not multipart\/encrypted/)
    expect(checkMessage(fixture('plain.eml'), inc(A, [B]))).toMatchObject({ accept: false, code: '523' })
  })
  it('a Secure-Join vc-request passes in the clear; one with more text does not', () => {
    expect(checkMessage(fixture('securejoin-vc-request.eml'), out())).toEqual({ accept: true, kind: 'securejoin' })
    expect(checkMessage(fixture('securejoin-vc-request.eml'), inc(A, [B]))).toEqual({
      accept: true,
      kind: 'securejoin',
    })
    const vg = fixture('securejoin-vc-request.eml').toString('latin1').replaceAll('vc-request', 'vg-request')
    expect(checkMessage(Buffer.from(vg), out())).toEqual({ accept: true, kind: 'securejoin' })
    const fake = checkMessage(fixture('securejoin-vc-request-fake.eml'), out())
    expect(fake).toMatchObject({ accept: false, code: '523' })
    expect(!fake.accept && fake.reason).toMatch(/not a Secure-Join request/)
    // Other steps of the handshake are encrypted: in the clear they are refused.
    const auth = fixture('securejoin-vc-request.eml')
      .toString('latin1')
      .replace(/^Secure-Join: vc-request/m, 'Secure-Join: vc-request-with-auth')
    expect(checkMessage(Buffer.from(auth), out())).toMatchObject({ accept: false })
  })
  it('a mailer-daemon report passes incoming only', () => {
    const raw = fixture('mailer-daemon.eml')
    expect(checkMessage(raw, inc('', [A], '198.51.100.1'))).toEqual({ accept: true, kind: 'bounce' })
    expect(checkMessage(raw, out('mailer-daemon@mx.example.net'))).toMatchObject({ accept: false })
    const noAuto = raw.toString('latin1').replace(/^Auto-Submitted:.*\r\n/m, '')
    expect(checkMessage(Buffer.from(noAuto), inc('', [A]))).toMatchObject({ accept: false, code: '523' })
  })
  it('a delivery report passes only from the null sender (MAIL FROM:<>), as one: report-type delivery-status, a message/delivery-status part', () => {
    const raw = fixture('mailer-daemon.eml').toString('latin1')
    const bounce = (text: string, mailFrom = '') => checkMessage(Buffer.from(text, 'latin1'), inc(mailFrom, [A]))
    expect(bounce(raw)).toEqual({ accept: true, kind: 'bounce' })
    // Cleartext that calls itself a report, from a sender that is not the null sender.
    expect(bounce(raw, 'mailer-daemon@mx.example.net')).toMatchObject({ accept: false, code: '523' })
    expect(bounce(raw, 'spammer@example.com')).toMatchObject({ accept: false, code: '523' })
    // The returned message or its header as a third part; the parts as postfix and exim write them.
    const returned = (type: string) =>
      raw.replace('--rb1--', `--rb1\r\nContent-Type: ${type}\r\n\r\nFrom: <${A}>\r\nSubject: hi\r\n\r\nhi\r\n--rb1--`)
    expect(bounce(returned('message/rfc822'))).toEqual({ accept: true, kind: 'bounce' })
    expect(bounce(returned('text/rfc822-headers'))).toEqual({ accept: true, kind: 'bounce' })
    expect(bounce(returned('message/global'))).toEqual({ accept: true, kind: 'bounce' })
    const folded = raw.replace(
      'multipart/report; report-type=delivery-status; boundary="rb1"',
      'multipart/report;\r\n\tboundary="rb1"; report-type="Delivery-Status"',
    )
    expect(bounce(folded)).toEqual({ accept: true, kind: 'bounce' })
    const refused: [string, string, RegExp][] = [
      [
        'another report type',
        raw.replace('report-type=delivery-status', 'report-type=disposition-notification'),
        /multipart\/report is not/,
      ],
      ['no report type', raw.replace('report-type=delivery-status; ', ''), /multipart\/report is not/],
      ['multipart/mixed', raw.replace('multipart/report', 'multipart/mixed'), /multipart\/mixed is not/],
      [
        'Auto-Submitted: no',
        raw.replace('Auto-Submitted: auto-replied', 'Auto-Submitted: no'),
        /multipart\/report is not/,
      ],
      [
        'From another user',
        raw.replace('MAILER-DAEMON@mx.example.net', 'postmaster@mx.example.net'),
        /multipart\/report is not/,
      ],
      [
        'no status part',
        raw.replace('message/delivery-status', 'text/plain'),
        /second part of a delivery report is text\/plain/,
      ],
      [
        'only one part',
        raw.replace(/--rb1\r\nContent-Type: message\/delivery-status[\s\S]*?(?=--rb1--)/, ''),
        /without its message\/delivery-status/,
      ],
      [
        'a fourth part',
        returned('message/rfc822').replace('--rb1--', '--rb1\r\nContent-Type: text/plain\r\n\r\nmore\r\n--rb1--'),
        /more than three parts/,
      ],
      ['a third part of text', returned('text/plain'), /third part of a delivery report is text\/plain/],
      ['no closing delimiter', raw.replace('--rb1--', ''), /incomplete delivery report/],
      [
        'a base64 multipart',
        raw.replace('MIME-Version: 1.0', 'MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64'),
        /Content-Transfer-Encoding base64/,
      ],
    ]
    for (const [name, text, reason] of refused) {
      const v = bounce(text)
      expect(v.accept, name).toBe(false)
      expect(!v.accept && v.reason, name).toMatch(reason)
    }
  })
  it('an Autocrypt Setup Message passes outgoing to oneself only', () => {
    const raw = fixture('autocrypt-setup-message.eml')
    expect(checkMessage(raw, out(A, [A]))).toEqual({ accept: true, kind: 'setup-message' })
    expect(checkMessage(raw, out(A, [A, B]))).toMatchObject({ accept: false })
    expect(checkMessage(raw, out(A, [B]))).toMatchObject({ accept: false })
    expect(checkMessage(raw, inc(A, [A]))).toMatchObject({ accept: false })
  })
})

describe('senders', () => {
  it('outgoing: the From header must be the sender', () => {
    const v = checkMessage(pgpMimeMessage({ from: 'mallory@example.org', to: B }), out())
    expect(v).toMatchObject({ accept: false, code: '550' })
    expect(!v.accept && v.reason).toMatch(/From header <mallory@example.org> is not the sender <alice@example.org>/)
    expect(checkMessage(pgpMimeMessage({ from: 'Alice@Example.org', to: B }), out())).toMatchObject({ accept: true })
  })
  it('incoming: a From of user@[IP] must come from IP; other senders may differ from the envelope', () => {
    const lit = pgpMimeMessage({ from: 'x@[192.0.2.7]', to: A })
    expect(checkMessage(lit, inc('x@[192.0.2.7]', [A], '192.0.2.7'))).toMatchObject({ accept: true })
    const v = checkMessage(lit, inc('x@[192.0.2.7]', [A], '203.0.113.9'))
    expect(!v.accept && v.reason).toMatch(/\[192\.0\.2\.7\] is not the sending server's address 203\.0\.113\.9/)
    expect(checkMessage(pgpMimeMessage({ from: B, to: A }), inc('bounce+x@lists.example.net'))).toMatchObject({
      accept: true,
    })
  })
  it('two From headers, or none, are malformed', () => {
    const raw = pgpMimeMessage({ from: A, to: B }).toString('latin1')
    expect(checkMessage(Buffer.from(`From: <${A}>\r\n${raw}`), out())).toMatchObject({ accept: false, code: '554' })
    expect(checkMessage(Buffer.from(raw.replace(/^From:.*\r\n/m, '')), out())).toMatchObject({
      accept: false,
      code: '554',
    })
  })
})

/** A message from parts, to break one thing at a time. */
function encrypted(o: { version?: string; second?: string; armorText?: string; third?: boolean; cte?: string } = {}) {
  const armored =
    o.armorText ?? armor(Buffer.concat([packet(1, Buffer.alloc(60, 1)), packet(18, Buffer.alloc(300, 2))]))
  return Buffer.from(
    [
      `From: <${A}>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="XyZ"',
      '',
      'preamble text is ignored',
      '--XyZ',
      'Content-Type: application/pgp-encrypted',
      '',
      o.version ?? 'Version: 1',
      '--XyZ',
      `Content-Type: ${o.second ?? 'application/octet-stream'}`,
      ...(o.cte ? [`Content-Transfer-Encoding: ${o.cte}`] : []),
      '',
      armored,
      ...(o.third ? ['--XyZ', 'Content-Type: text/plain', '', 'hello'] : []),
      '--XyZ--',
      'epilogue is ignored',
      '',
    ].join('\r\n'),
  )
}

describe('structure', () => {
  it('the reference message passes; each broken rule is refused with its reason', () => {
    expect(checkMessage(encrypted(), out())).toEqual({ accept: true, kind: 'encrypted' })
    const cases: [Buffer, RegExp][] = [
      [encrypted({ version: 'Version: 2' }), /does not say "Version: 1"/],
      [encrypted({ second: 'text/plain' }), /second part is text\/plain/],
      [encrypted({ third: true }), /more than two parts/],
      [encrypted({ cte: 'quoted-printable' }), /Content-Transfer-Encoding quoted-printable/],
      [encrypted({ second: 'multipart/mixed; boundary=q' }), /nested multipart/],
      [encrypted({ armorText: 'Hello, this is not armored.\r\n' }), /does not start with -----BEGIN PGP MESSAGE-----/],
      [
        encrypted({ armorText: '-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA!!!\r\n-----END PGP MESSAGE-----\r\n' }),
        /not valid base64/,
      ],
      [
        encrypted({
          armorText: `-----BEGIN PGP MESSAGE-----\r\n\r\n${Buffer.from('Hello plaintext, pretending to be OpenPGP').toString('base64')}\r\n-----END PGP MESSAGE-----\r\n`,
        }),
        /OpenPGP/,
      ],
      [
        encrypted({ armorText: armor(packet(1, Buffer.alloc(60))) }),
        /last OpenPGP packet is not encrypted data \(tag 1/,
      ],
      [
        encrypted({ armorText: armor(Buffer.concat([packet(11, Buffer.alloc(20)), packet(18, Buffer.alloc(50))])) }),
        /tag 11 before the end/,
      ],
      [
        encrypted({
          armorText: armor(
            Buffer.concat([packet(1, Buffer.alloc(60)), packet(18, Buffer.alloc(300))]).subarray(0, 200),
          ),
        }),
        /ends inside a packet/,
      ],
      [
        encrypted({ armorText: '-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA1234\r\n' }),
        /ends before -----END PGP MESSAGE-----/,
      ],
      [
        encrypted({
          armorText: `${armor(Buffer.concat([packet(1, Buffer.alloc(60)), packet(18, Buffer.alloc(30))]))}PS: in the clear\r\n`,
        }),
        /text after -----END PGP MESSAGE-----/,
      ],
    ]
    for (const [raw, reason] of cases) {
      const v = checkMessage(raw, out())
      expect(v.accept, String(reason)).toBe(false)
      expect(!v.accept && v.reason).toMatch(reason)
    }
  })
  it('armor headers: refused outgoing (as chatmail does), accepted incoming', () => {
    const raw = pgpMimeMessage({ from: A, to: B, armorHeaders: ['Version: Something 1.0', 'Comment: hi'] })
    const v = checkMessage(raw, out())
    expect(!v.accept && v.reason).toMatch(/armor header line in outgoing mail/)
    expect(checkMessage(raw, inc(A, [B]))).toMatchObject({ accept: true })
  })
  it('LF line ends, odd line widths, partial and 5-octet lengths, legacy session-key headers', () => {
    expect(checkMessage(pgpMimeMessage({ from: A, to: B, eol: '\n', size: 100_000 }), out(), 333)).toMatchObject({
      accept: true,
    })
    expect(checkMessage(pgpMimeMessage({ from: A, to: B, width: 70, size: 50_000 }), out(), 1000)).toMatchObject({
      accept: true,
    })
    expect(checkMessage(pgpMimeMessage({ from: A, to: B, partial: 9, size: 100_000 }), out(), 4096)).toMatchObject({
      accept: true,
    })
    const legacy = Buffer.concat([Buffer.from([0x84, 60]), Buffer.alloc(60, 3), packet(18, Buffer.alloc(9000, 4))])
    expect(checkMessage(pgpMimeMessage({ from: A, to: B, packets: legacy }), out(), 100)).toMatchObject({
      accept: true,
    })
  })
  it('a message that is only a header, or has no boundary, is refused', () => {
    expect(
      checkMessage(Buffer.from(`From: <${A}>\r\nContent-Type: multipart/encrypted; boundary=x\r\n`), out()),
    ).toMatchObject({ accept: false })
    expect(
      checkMessage(Buffer.from(`From: <${A}>\r\nContent-Type: multipart/encrypted\r\n\r\nx\r\n`), out()),
    ).toMatchObject({ accept: false, code: '554' })
    expect(checkMessage(plainMessage(A, B, 'x'.repeat(5000)), out())).toMatchObject({ accept: false, code: '523' })
  })
  it('a line over 998 characters in the MIME structure is malformed', () => {
    const v = checkMessage(encrypted({ version: `Version: 1${' '.repeat(2000)}` }), out(), 512)
    expect(v).toMatchObject({ accept: false, code: '554' })
  })
})

describe('a 30 MB message', () => {
  /**
   * Core's message (core-5) with its session-key packets and a 30 MB encrypted packet, armored in
   * core's 64-character lines and made piece by piece, never held whole; `declared` is the length
   * its packet header gives (more than 30 MB: the data ends inside the packet).
   */
  function* bigCoreMessage(declared: number): Generator<Buffer> {
    const size = 30 * 1024 * 1024
    const { text, packets, width } = coreParts('core-5-message.eml')
    const keys = splitPackets(packets).slice(0, -1)
    const head = Buffer.from([0xc0 | 18, 255, 0, 0, 0, 0])
    head.writeUInt32BE(declared, 2)
    const per = (width / 4) * 3
    const prefix = Buffer.concat([...keys, head])
    const first = Buffer.concat([prefix, Buffer.alloc(per - (prefix.length % per), 0x5a)])
    let left = size - (first.length - prefix.length)
    const [before, after] = text.split(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----\r\n/) as [
      string,
      string,
    ]
    const b64 = first.toString('base64')
    let lines = ''
    for (let i = 0; i < b64.length; i += width) lines += `${b64.slice(i, i + width)}\r\n`
    yield Buffer.from(`${before}-----BEGIN PGP MESSAGE-----\r\n\r\n${lines}`, 'latin1')
    const line = `${Buffer.alloc(per, 0x5a).toString('base64')}\r\n`
    const block = Buffer.from(line.repeat(10_000), 'latin1')
    for (; left >= per * 10_000; left -= per * 10_000) yield block
    const full = Math.floor(left / per)
    yield block.subarray(0, full * line.length)
    left -= full * per
    const tail = left > 0 ? `${Buffer.alloc(left, 0x5a).toString('base64')}\r\n` : ''
    yield Buffer.from(`${tail}-----END PGP MESSAGE-----\r\n${after}`, 'latin1')
  }

  function stream(declared: number) {
    const from = coreParts('core-5-message.eml').from
    const c = new RawMessageCheck(out(from))
    let max = 0
    let total = 0
    for (const piece of bigCoreMessage(declared)) {
      for (let i = 0; i < piece.length; i += 65536) {
        const v = c.write(piece.subarray(i, i + 65536))
        if (v) return { verdict: v, max, total }
        max = Math.max(max, c.buffered)
        total += Math.min(65536, piece.length - i)
      }
    }
    return { verdict: c.end(), max, total }
  }

  it("core's header and session keys with a 30 MB encrypted packet stream through in 64 KiB chunks holding at most one line", () => {
    const ok = stream(30 * 1024 * 1024)
    expect(ok.verdict).toEqual({ accept: true, kind: 'encrypted' })
    expect(ok.total).toBeGreaterThan(40_000_000)
    expect(ok.max).toBeLessThanOrEqual(1000)
    // The same with a packet header one byte longer: the last of 40 MB of armor decides it.
    expect(stream(30 * 1024 * 1024 + 1).verdict).toMatchObject({
      accept: false,
      reason: expect.stringMatching(/ends inside a packet/),
    })
  })
})

describe("the doctor's round-trip message (openpgp.js)", () => {
  it('passes the filter, so `mail.roundtrip` keeps working behind it', async () => {
    const openpgp = await import('openpgp')
    const { pgpMimeMessage: doctorMessage } = await import('../../src/doctor/checks/mail-flow.js')
    const { privateKey, publicKey } = await openpgp.generateKey({
      type: 'ecc',
      userIDs: [{ email: A }],
      format: 'object',
    })
    const armored = await openpgp.encrypt({
      message: await openpgp.createMessage({ text: 'round trip' }),
      encryptionKeys: publicKey,
      signingKeys: privateKey,
    })
    const raw = Buffer.from(doctorMessage({ from: A, to: A, messageId: 'x@example.org', date: new Date(), armored }))
    expect(checkMessage(raw, out(A, [A]))).toEqual({ accept: true, kind: 'encrypted' })
    expect(checkMessage(raw, inc(A, [A]))).toEqual({ accept: true, kind: 'encrypted' })
  })
})
