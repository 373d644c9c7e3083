/**
 * chatmail-filter's milter conversation, frame by frame as postfix's smtpd holds it (milter
 * protocol 6): negotiation, macros, MAIL/RCPT, header fields, body chunks, the reply at the end;
 * the per-user send rate; the size limit; and the packet scanner and config on their own.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/remote/chatmail-filter/config.js'
import {
  CMD,
  cstrings,
  type Frame,
  FrameReader,
  frame,
  MilterSession,
  P,
} from '../../src/remote/chatmail-filter/milter.js'
import { PacketScanner } from '../../src/remote/chatmail-filter/openpgp.js'
import { SendRate } from '../../src/remote/chatmail-filter/rate.js'
import { packet, pgpMimeMessage, plainMessage } from '../helpers/pgp-mime.js'

const z = (...s: string[]) => Buffer.from(s.map((x) => `${x}\0`).join(''), 'latin1')

function optneg(protocol = 0x1fffff): Buffer {
  const b = Buffer.alloc(12)
  b.writeUInt32BE(6, 0)
  b.writeUInt32BE(0x1ff, 4)
  b.writeUInt32BE(protocol, 8)
  return frame(CMD.optneg, b)
}

function connect(addr: string): Buffer {
  const port = Buffer.alloc(2)
  port.writeUInt16BE(25000)
  return frame(CMD.connect, Buffer.concat([z('client.example'), Buffer.from('4'), port, z(addr)]))
}

/** The frames postfix sends for one message (headers split off the raw message, body in chunks). */
function messageFrames(raw: Buffer, mailFrom: string, rcpts: string[], login?: string, chunk = 65535): Buffer[] {
  const text = raw.toString('latin1')
  const sep = text.indexOf('\r\n\r\n')
  const out: Buffer[] = []
  out.push(frame(CMD.macro, Buffer.concat([Buffer.from('M'), login ? z('{auth_authen}', login) : z('i', 'ABC')])))
  out.push(frame(CMD.mail, z(`<${mailFrom}>`, 'SIZE=100')))
  for (const r of rcpts) out.push(frame(CMD.rcpt, z(`<${r}>`)))
  for (const field of text.slice(0, sep).split(/\r\n(?![ \t])/)) {
    const colon = field.indexOf(':')
    out.push(frame(CMD.header, z(field.slice(0, colon), field.slice(colon + 1).replace(/^ /, ''))))
  }
  out.push(frame(CMD.endOfHeaders))
  const body = raw.subarray(sep + 4)
  for (let i = 0; i < body.length; i += chunk) out.push(frame(CMD.body, body.subarray(i, i + chunk)))
  out.push(frame(CMD.endOfBody))
  return out
}

/** Runs frames through a session (bytes split at odd places, `read` bytes a read) and returns the answers. */
function converse(session: MilterSession, frames: Buffer[], read = 1000): Frame[] {
  const reader = new FrameReader()
  const replies = new FrameReader()
  const all = Buffer.concat(frames)
  const answers: Frame[] = []
  for (let i = 0; i < all.length; i += read) {
    for (const f of reader.push(all.subarray(i, i + read))) {
      for (const a of session.handle(f)) answers.push(...replies.push(a))
    }
  }
  return answers
}

const session = (
  max = 31457280,
  onSender?: (l: string) => ReturnType<NonNullable<ConstructorParameters<typeof MilterSession>[0]['onSender']>>,
) => new MilterSession({ maxMessageSize: max, onSender })

describe('milter session', () => {
  it('negotiates protocol 6, no message changes, no answers to headers and body chunks when postfix allows', () => {
    const [o] = converse(session(), [optneg()])
    expect(o?.cmd).toBe('O')
    expect(o?.data.readUInt32BE(0)).toBe(6)
    expect(o?.data.readUInt32BE(4)).toBe(0)
    expect((o as Frame).data.readUInt32BE(8) & (P.noReplyHeader | P.noReplyBody)).toBe(P.noReplyHeader | P.noReplyBody)
    // Offered nothing: it asks for nothing.
    expect(converse(session(), [optneg(0)])[0]?.data.readUInt32BE(8)).toBe(0)
  })

  it('a submitted encrypted message is accepted; plaintext gets 523 with the reason at the end of DATA', () => {
    const s = session()
    const a = 'alice@example.org'
    const enc = converse(s, [
      optneg(),
      connect('192.0.2.1'),
      ...messageFrames(pgpMimeMessage({ from: a, to: 'b@x.org', size: 200_000 }), a, ['b@x.org'], a),
    ])
    expect(enc.map((f) => f.cmd).join('')).toBe('Occcca')
    const plain = converse(s, messageFrames(plainMessage(a, 'b@x.org'), a, ['b@x.org'], a))
    const last = plain[plain.length - 1] as Frame
    expect(last.cmd).toBe('y')
    expect(cstrings(last.data)[0]).toMatch(/^523 5\.7\.1 Encryption Needed: .*text\/plain is not multipart\/encrypted/)
  })

  it('without postfix allowing it, every header and body chunk is answered with continue', () => {
    const a = 'alice@example.org'
    const msg = pgpMimeMessage({ from: a, to: 'b@x.org', size: 200_000 })
    const frames = messageFrames(msg, a, ['b@x.org'], a)
    const answers = converse(session(), [optneg(0), ...frames])
    // one answer per frame except the macro frame; the last one accepts
    expect(answers.length).toBe(1 + frames.length - 1)
    expect(answers[answers.length - 1]?.cmd).toBe('a')
  })

  it('port 25 (no login): the message is judged as incoming; a forged [IP] sender is refused', () => {
    const from = 'x@[192.0.2.99]'
    const answers = converse(session(), [
      optneg(),
      connect('192.0.2.1'),
      ...messageFrames(pgpMimeMessage({ from, to: 'a@y.org' }), from, ['a@y.org']),
    ])
    const last = answers[answers.length - 1] as Frame
    expect(cstrings(last.data)[0]).toMatch(
      /^550 5\.7\.1 From domain \[192\.0\.2\.99\] is not the sending server's address 192\.0\.2\.1/,
    )
  })

  it('refuses over max_message_size with 552', () => {
    const a = 'alice@example.org'
    const answers = converse(session(50_000), [
      optneg(),
      ...messageFrames(pgpMimeMessage({ from: a, to: 'b@x.org', size: 100_000 }), a, ['b@x.org'], a),
    ])
    expect(cstrings((answers[answers.length - 1] as Frame).data)[0]).toMatch(/^552 5\.3\.4 Message too big/)
  })

  it('asks the rate hook at MAIL FROM of a logged-in user and gives its 450', () => {
    const rate = new SendRate(60, 2)
    const s = session(31457280, (login) =>
      rate.take(login, 0) === 0
        ? undefined
        : { accept: false, code: '450', status: '4.7.1', reason: `Too much mail from ${login}` },
    )
    const a = 'alice@example.org'
    const mail = [
      frame(CMD.macro, Buffer.concat([Buffer.from('M'), z('{auth_authen}', a)])),
      frame(CMD.mail, z(`<${a}>`)),
    ]
    expect(
      converse(s, [optneg(), ...mail, ...mail])
        .map((f) => f.cmd)
        .join(''),
    ).toBe('Occ')
    const third = converse(s, mail)
    expect(third[0]?.cmd).toBe('y')
    expect(cstrings((third[0] as Frame).data)[0]).toBe(`450 4.7.1 Too much mail from ${a}`)
  })

  it("core's messages pass, read in pieces of any size (body frames are handed on unjoined); a cleartext part after the encrypted one is refused", () => {
    const dir = join(import.meta.dirname, '..', 'fixtures', 'mail')
    const names = readdirSync(dir).filter((f) => f.startsWith('core-'))
    expect(names.length).toBeGreaterThanOrEqual(6)
    for (const name of names) {
      const raw = Buffer.from(readFileSync(join(dir, name), 'latin1').replace(/\r?\n/g, '\r\n'), 'latin1')
      const from = /^From:.*?<?([^<>\s]+@[^<>\s]+)>?\s*$/im.exec(raw.toString('latin1'))?.[1] as string
      for (const read of [1, 5, 13, 4096, 65536, 70000]) {
        // Body chunks of 1000 bytes: frame boundaries fall inside armor lines too.
        const answers = converse(session(), [optneg(), ...messageFrames(raw, from, ['b@x.org'], from, 1000)], read)
        expect(answers.map((f) => f.cmd).join(''), `${name}, reads of ${read}`).toBe('Occca')
      }
      // A plaintext part after the encrypted one, before the closing boundary. (What follows the
      // closing boundary is the epilogue, which clients ignore like the preamble; it is not looked
      // at, as in chatmail's filtermail.)
      const boundary = /boundary="([^"]+)"/.exec(raw.toString('latin1'))?.[1] as string
      const text = raw.toString('latin1')
      const extra = `--${boundary}\r\nContent-Type: text/plain\r\n\r\nhello in the clear\r\n`
      for (const tampered of [text.replace(`--${boundary}--`, `${extra}--${boundary}--`)]) {
        const answers = converse(session(), [
          optneg(),
          ...messageFrames(Buffer.from(tampered, 'latin1'), from, ['b@x.org'], from),
        ])
        const last = answers[answers.length - 1] as Frame
        expect(last.cmd, name).toBe('y')
        expect(cstrings(last.data)[0]).toMatch(/^(523 5\.7\.1|554 5\.6\.0) /)
      }
    }
  })

  it('boundary="zz(1)" (issue #23): cleartext delimited by the quoted boundary around PGP/MIME delimited by the boundary without "(1)" is refused', () => {
    const a = 'alice@example.org'
    const text = pgpMimeMessage({ from: a, to: 'b@x.org' }).toString('latin1')
    const b = /boundary="([^"]+)"/.exec(text)?.[1] as string
    const sep = text.indexOf('\r\n\r\n') + 4
    // The old reading of "b(1)" was "b " (the parentheses taken for a comment).
    const inner = text.slice(sep).replaceAll(`--${b}`, `--${b} `)
    const forged = `${text.slice(0, sep).replace(`boundary="${b}"`, `boundary="${b}(1)"`)}--${b}(1)\r\nContent-Type: text/plain\r\n\r\nin the clear\r\n${inner}--${b}(1)--\r\n`
    for (const login of [a, undefined]) {
      const answers = converse(session(), [
        optneg(),
        connect('192.0.2.1'),
        ...messageFrames(Buffer.from(forged, 'latin1'), a, ['b@x.org'], login),
      ])
      const last = answers[answers.length - 1] as Frame
      expect(last.cmd).toBe('y')
      expect(cstrings(last.data)[0]).toMatch(/^523 5\.7\.1 .*the first part is text\/plain/)
    }
  })

  it('a delivery report passes from MAIL FROM:<> only', () => {
    const raw = Buffer.from(
      readFileSync(join(import.meta.dirname, '..', 'fixtures', 'mail', 'mailer-daemon.eml'), 'latin1').replace(
        /\r?\n/g,
        '\r\n',
      ),
      'latin1',
    )
    const bounce = converse(session(), [
      optneg(),
      connect('192.0.2.1'),
      ...messageFrames(raw, '', ['alice@example.org']),
    ])
    expect(bounce[bounce.length - 1]?.cmd).toBe('a')
    const sender = 'mailer-daemon@mx.example.net'
    const forged = converse(session(), [
      optneg(),
      connect('192.0.2.1'),
      ...messageFrames(raw, sender, ['alice@example.org']),
    ])
    expect(cstrings((forged[forged.length - 1] as Frame).data)[0]).toMatch(/^523 5\.7\.1 .*multipart\/report is not/)
  })

  it('abort forgets the message; quit ends the session; an oversized frame is an error', () => {
    const s = session()
    expect(converse(s, [frame(CMD.abort)])).toEqual([])
    converse(s, [frame(CMD.quit)])
    expect(s.closed).toBe(true)
    const big = Buffer.alloc(4)
    big.writeUInt32BE(2 * 1024 * 1024)
    expect(() => new FrameReader().push(big)).toThrow(/milter frame/)
  })
})

describe('send rate', () => {
  it('a burst, then one per 60/perMinute seconds; users are counted apart; idle users are forgotten', () => {
    const r = new SendRate(60, 3)
    expect([0, 0, 0].map(() => r.take('a', 1000))).toEqual([0, 0, 0])
    expect(r.take('a', 1000)).toBe(1)
    expect(r.take('b', 1000)).toBe(0)
    expect(r.take('a', 2000)).toBe(0)
    expect(r.take('a', 2000)).toBe(1)
    r.take('c', 200_000)
    expect(r.size).toBe(1)
  })
})

describe('packet scanner', () => {
  const scan = (b: Buffer, step = 1) => {
    const s = new PacketScanner()
    for (let i = 0; i < b.length; i += step) s.feed(b, i, Math.min(b.length, i + step))
    return s.end()
  }
  it('session keys then one SEIPD, in every length form', () => {
    expect(
      scan(
        Buffer.concat([packet(1, Buffer.alloc(10)), packet(3, Buffer.alloc(300)), packet(18, Buffer.alloc(70_000))]),
      ),
    ).toEqual({ ok: true })
    expect(scan(Buffer.concat([packet(1, Buffer.alloc(10)), packet(18, Buffer.alloc(5000), 9)]), 7)).toEqual({
      ok: true,
    })
    expect(scan(packet(18, Buffer.alloc(1)))).toEqual({ ok: true })
  })
  it('refuses other packets, trailing data and truncation', () => {
    expect(scan(Buffer.alloc(0))).toMatchObject({ ok: false, reason: /empty/ })
    expect(scan(packet(11, Buffer.from('literal data')))).toMatchObject({ ok: false })
    expect(scan(Buffer.concat([packet(18, Buffer.alloc(10)), packet(1, Buffer.alloc(10))]))).toMatchObject({
      ok: false,
      reason: /tag 18 before the end/,
    })
    expect(scan(Buffer.from([0x3f, 1, 2]))).toMatchObject({ ok: false, reason: /not an OpenPGP packet/ })
    expect(scan(packet(18, Buffer.alloc(100)).subarray(0, 50))).toMatchObject({ ok: false, reason: /inside a packet/ })
  })
})

describe('config', () => {
  it('reads the keys and refuses bad values', () => {
    const ok = parseConfig('socket = /run/x.sock\nmax_message_size = 30M\nmax_user_send_per_minute = 5\n')
    expect(ok).toMatchObject({ ok: true, config: { maxMessageSize: 31457280, sendPerMinute: 5, sendBurst: 10 } })
    const bad = parseConfig('socket = x\nmax_user_send_burst = 0\nfoo = 1\n')
    expect(bad.ok).toBe(false)
    expect(!bad.ok && bad.errors.join('\n')).toMatch(
      /unknown key "foo"[\s\S]*socket "x" is not an absolute path[\s\S]*max_user_send_burst/,
    )
  })
})
