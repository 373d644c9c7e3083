/**
 * chatmail-filter's reading of structured header fields (headers.ts) against a reference MIME
 * parser, Python 3's `email` package (test/helpers/mime-tree.py, both its compat32 and its
 * default policy): where the two could see a different MIME structure, the filter must refuse.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { headerAddress, parseContentType, parseEncoding } from '../../src/remote/chatmail-filter/headers.js'
import { checkMessage, type Envelope } from '../../src/remote/chatmail-filter/mime.js'
import { armor, packet } from '../helpers/pgp-mime.js'

const A = 'alice@example.org'
const B = 'bob@example.net'
const out: Envelope = { direction: 'outgoing', mailFrom: A, rcpts: [B] }
const inc: Envelope = { direction: 'incoming', mailFrom: B, rcpts: [A], clientAddr: '192.0.2.7' }

/** The two PGP/MIME parts, delimited by `--${boundary}` (RFC 3156), and the close delimiter. */
function pgpParts(boundary: string, size = 300): string {
  const bytes = Buffer.alloc(size, 7)
  const packets = Buffer.concat([packet(1, bytes.subarray(0, 94)), packet(18, bytes)])
  return [
    `--${boundary}`,
    'Content-Type: application/pgp-encrypted',
    '',
    'Version: 1',
    '',
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    '',
    armor(packets),
    `--${boundary}--`,
    '',
  ].join('\r\n')
}

function message(contentType: string, body: string): Buffer {
  return Buffer.from(
    `From: <${A}>\r\nTo: <${B}>\r\nSubject: [...]\r\nMIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n\r\n${body}`,
    'latin1',
  )
}

describe('boundaries the filter and RFC 2045 parsers must read alike', () => {
  it('boundary="zz(1)": a cleartext part delimited by --zz(1) around a PGP/MIME structure delimited by --zz is refused', () => {
    // Every RFC 2045 parser delimits on --zz(1) (the parentheses are inside a quoted string, not
    // a comment) and finds one text/plain part; the old filter read the boundary as "zz " (the
    // "comment" made a space) and checked a PGP/MIME structure delimited by "--zz ".
    const raw = message(
      'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="zz(1)"',
      `--zz(1)\r\nContent-Type: text/plain\r\n\r\nBuy now, in the clear.\r\n${pgpParts('zz ')}--zz(1)--\r\n`,
    )
    for (const env of [out, inc]) expect(checkMessage(raw, env)).toMatchObject({ accept: false })
    // The same structure with a boundary without parentheses passes (the test can tell).
    expect(
      checkMessage(
        message('multipart/encrypted; protocol="application/pgp-encrypted"; boundary="zz1"', pgpParts('zz1')),
        out,
      ),
    ).toEqual({ accept: true, kind: 'encrypted' })
  })
})

interface PyNode {
  type?: string
  boundary?: string | null
  multipart?: boolean
  parts?: PyNode[]
  error?: string
}

/** Python's reading of each message (test/helpers/mime-tree.py), under both its policies. */
function pythonTrees(messages: Buffer[]): { compat32: PyNode; default: PyNode }[] {
  const r = spawnSync('python3', [join(import.meta.dirname, '..', 'helpers', 'mime-tree.py')], {
    input: JSON.stringify(messages.map((m) => m.toString('base64'))),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
  if (r.status !== 0) throw new Error(`mime-tree.py: ${r.error ?? r.stderr}`)
  return JSON.parse(r.stdout)
}

/** A small deterministic generator (mulberry32), so every run checks the same cases. */
function rng(seed: number): { int(n: number): number; pick<T>(a: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)] as (typeof arr)[number],
    chance: (p) => next() < p,
  }
}

const BOUNDARIES = [
  'zz',
  'zz(1)',
  '(1)zz',
  'z(a)z',
  'z z',
  'zz ',
  ' zz',
  'a=b',
  'a?b',
  'a/b',
  'a.b:c',
  "a'b",
  'a,b',
  'a+b_c-d',
  'zz)',
  '(zz',
  'a"b',
  'a\\b',
  'a;b',
  'zz\t',
  'x'.repeat(70),
  'y'.repeat(71),
  'ZZ',
  'zz--',
  '-zz',
] as const
/** Boundaries RFC 2046 allows, quoted or not (those with tspecials must be quoted). */
const PLAIN = ['zz', 'zz(1)', 'a+b_c-d', "a'b", 'a=b', 'z z', 'x'.repeat(70), 'Zz.09'] as const
const TYPES = [
  'multipart/encrypted',
  'Multipart/Encrypted',
  'MULTIPART/ENCRYPTED',
  'multipart /encrypted',
  'multipart/ encrypted',
  'multipart/encrypted (pgp)',
  '(c) multipart/encrypted',
  'multipart/mixed',
  'text/plain',
  'multipart/"encrypted"',
] as const

/** A boundary parameter's value, written one of the ways a header may write it. */
function renderValue(g: ReturnType<typeof rng>, b: string, tidy: boolean): string {
  switch (g.int(tidy ? 4 : 7)) {
    case 0:
      return b
    case 1:
    case 2:
      return `"${b}"`
    case 3:
      return `"${b.replace(/["\\]/g, '\\$&')}"`
    case 4:
      return `"${b.slice(0, 1)}\\${b.slice(1)}"` // an escaped ordinary character
    case 5:
      return g.chance(0.5) ? `"${b}" (c)` : `(c)"${b}"`
    default:
      return `${b}${g.pick(['(c)', ' (c)', ' ((nested) c)', '(")'])}`
  }
}

function boundaryParam(g: ReturnType<typeof rng>, b: string, tidy: boolean): string {
  const name = g.pick(['boundary', 'BOUNDARY', 'Boundary', 'boundary', 'boundary'])
  const eq = g.pick(['=', '=', ' = ', '= ', '=\r\n '])
  switch (tidy ? 3 : g.int(20)) {
    case 0:
      return `${name}*=utf-8''${b}`
    case 1:
      return `${name}*0="${b.slice(0, 1)}"; ${name}*1="${b.slice(1)}"`
    case 2:
      return `${name}*0="${b}"`
    default:
      return `${name}${eq}${renderValue(g, b, tidy)}`
  }
}

/** The delimiters a parser might take from the header (the values, and the ways of misreading them). */
function readings(bs: string[]): string[] {
  const out = new Set<string>()
  for (const b of bs)
    for (const r of [b, b.replace(/\([^()]*\)/g, ' '), b.replace(/\([^()]*\)/g, ''), b.trim(), b.split(/[ (]/)[0]])
      if (r) out.add(r.replace(/[\r\n]/g, ''))
  return [...out]
}

interface Case {
  contentType: string
  raw: Buffer
}

function generate(seed: number, count: number): Case[] {
  const g = rng(seed)
  const cases: Case[] = []
  for (let i = 0; i < count; i++) {
    // Half of the headers are written as mail programs write them (with any of the boundaries).
    const tidy = g.chance(0.5)
    const boundary = () => (g.chance(0.5) ? g.pick(PLAIN) : g.pick(BOUNDARIES))
    const values = [boundary()]
    if (!tidy && g.chance(0.15)) values.push(boundary())
    const params = values.map((b) => boundaryParam(g, b, tidy))
    if (tidy) params.push('protocol="application/pgp-encrypted"')
    else if (g.chance(0.7))
      params.push(g.pick(['protocol="application/pgp-encrypted"', 'protocol=application/pgp-encrypted']))
    if (g.chance(0.2)) params.push(g.pick(['charset=utf-8', 'x-a="(b)"', 'x-c=d (e)']))
    for (let j = params.length - 1; j > 0; j--) {
      const k = g.int(j + 1)
      ;[params[j], params[k]] = [params[k] as string, params[j] as string]
    }
    const type = tidy || g.chance(0.8) ? 'multipart/encrypted' : g.pick(TYPES)
    let ct = type
    for (const p of params) ct += `${g.pick([';', '; ', ' ;', ';\r\n\t', ';\r\n '])}${p}`
    if (g.chance(0.1)) ct += ';'
    const ds = readings(values)
    const y = g.pick(ds)
    let body: string
    switch (g.int(5)) {
      case 0: {
        const x = g.pick(ds)
        body = `--${x}\r\nContent-Type: text/plain\r\n\r\nin the clear\r\n${pgpParts(y)}--${x}--\r\n`
        break
      }
      case 1:
        // A bare CR: a line end to Python, not to a reader of CRLF lines.
        body = `preamble\r--${y}\rContent-Type: text/plain\r\rin the clear\r\n${pgpParts(y)}`
        break
      case 2: {
        // A delimiter line among long armor lines (the filter skips runs of them unread).
        const lines = pgpParts(y, 4000).split('\r\n')
        const at = lines.findIndex((l) => l.startsWith('-----BEGIN')) + 20
        lines[at] = `--${y}`.padEnd((lines[at] as string).length, ' ')
        lines.splice(at + 1, 0, 'Content-Type: text/plain'.padEnd((lines[at] as string).length, ' '), 'in the clear')
        body = lines.join('\r\n')
        break
      }
      default:
        body = pgpParts(y)
    }
    cases.push({ contentType: ct, raw: message(ct, body) })
  }
  return cases
}

const PGP_PARTS = ['application/pgp-encrypted', 'application/octet-stream']

describe('the structured fields, by the RFC grammar', () => {
  it('Content-Type: quoted strings with their escapes, parameters once, boundaries RFC 2046 allows', () => {
    const read = (v: string) => {
      const ct = parseContentType(v)
      return ct && [ct.mime, Object.fromEntries(ct.params)]
    }
    expect(read('Multipart/Encrypted;\r\n\tprotocol="application/pgp-encrypted"; BOUNDARY="a b(1)"')).toEqual([
      'multipart/encrypted',
      { protocol: 'application/pgp-encrypted', boundary: 'a b(1)' },
    ])
    expect(read('application/octet-stream; name="a \\"b\\".asc"')).toEqual([
      'application/octet-stream',
      { name: 'a "b".asc' },
    ])
    for (const invalid of [
      'multipart/encrypted; boundary=zz(1)', // a comment after zz (Python: "zz(1)")
      'multipart/encrypted; boundary="zz" (c)',
      'multipart/encrypted (c); boundary=zz',
      'multipart /encrypted; boundary=zz',
      'multipart/encrypted; boundary="zz',
      'multipart/encrypted; boundary=a; boundary=b',
      'multipart/encrypted; boundary=a; BOUNDARY=a',
      "multipart/encrypted; boundary*=utf-8''zz",
      'multipart/encrypted; boundary*0=z; boundary*1=z',
      'multipart/encrypted; name=a; name*=b',
      'multipart/encrypted; boundary="z\\z"',
      'multipart/encrypted; boundary="z\r\n z"',
      "multipart/encrypted; boundary=a'b",
      'multipart/encrypted; boundary="zz "',
      `multipart/encrypted; boundary=${'x'.repeat(71)}`,
      'multipart/encrypted; boundary="a;b"',
      'multipart/encrypted; boundary=zz\nx',
      'multipart/encrypted boundary=zz',
    ])
      expect(parseContentType(invalid), invalid).toBeUndefined()
  })
  it('Content-Transfer-Encoding: one token', () => {
    expect(parseEncoding(' 7Bit ')).toBe('7bit')
    for (const invalid of ['7bit (c)', '"7bit"', '7bit base64', ''])
      expect(parseEncoding(invalid), invalid).toBeUndefined()
  })
  it('From: one mailbox, comments nested and quoted strings skipped', () => {
    expect(headerAddress('MAILER-DAEMON@mx.example.net (Mail Delivery System)')).toBe('mailer-daemon@mx.example.net')
    expect(headerAddress('"Bob (work) <b@evil.example>" <bob@example.org>')).toBe('bob@example.org')
    expect(headerAddress('Bob <bob@example.org> (a (nested) comment <c@evil.example>)')).toBe('bob@example.org')
    expect(headerAddress('x@[192.0.2.1]')).toBe('x@[192.0.2.1]')
    for (const invalid of ['a@b, c@d', 'A <a@b>, C <c@d>', '<a@b> (open', 'a@b )', '"a@b', '<a@b', 'bob'])
      expect(headerAddress(invalid), invalid).toBeUndefined()
  })
})

describe('lines the filter and RFC 2045 parsers must read alike', () => {
  const ct = 'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="zz"'
  it('a bare CR (a line end to Python) before a delimiter is refused', () => {
    const raw = message(ct, `preamble\r--zz\rContent-Type: text/plain\r\rin the clear\r\n${pgpParts('zz')}`)
    expect(pythonTrees([raw])[0]?.compat32.parts?.map((p) => p.type)).toEqual(['text/plain', ...PGP_PARTS])
    expect(checkMessage(raw, out)).toMatchObject({ accept: false, reason: /a CR that does not end a line/ })
  })
  it('a delimiter among long armor lines (runs the filter skips without decoding) is refused', () => {
    const lines = pgpParts('zz', 6000).split('\r\n')
    const at = lines.findIndex((l) => l.startsWith('-----BEGIN')) + 30
    const width = (lines[at] as string).length
    lines.splice(at, 2, '--zz'.padEnd(width, ' '), 'Content-Type: text/plain'.padEnd(width, ' '))
    const raw = message(ct, lines.join('\r\n'))
    expect(pythonTrees([raw])[0]?.compat32.parts?.map((p) => p.type)).toEqual([...PGP_PARTS, 'text/plain'])
    expect(checkMessage(raw, out)).toMatchObject({ accept: false })
  })
})

describe('Content-Type against a reference parser (Python email, both policies)', () => {
  it('python3 and its email package are there', () => {
    const r = spawnSync('python3', ['-c', 'import email, email.policy; print("ok")'], { encoding: 'utf8' })
    expect(r.stdout.trim()).toBe('ok')
  })

  it('1000 generated headers and messages: where the filter reads a Content-Type, Python reads the same type and boundary; what it accepts as encrypted, Python sees as the two PGP/MIME parts and nothing else', () => {
    const cases = generate(20261207, 1000)
    const trees = pythonTrees(cases.map((c) => c.raw))
    const disagreements: string[] = []
    let read = 0
    let accepted = 0
    let refusedWherePythonSeesCleartext = 0
    cases.forEach((c, i) => {
      const py = trees[i] as { compat32: PyNode; default: PyNode }
      const ours = parseContentType(c.contentType)
      const boundary = ours?.params.get('boundary')
      if (ours) {
        read++
        for (const [policy, t] of Object.entries(py))
          if (t.type !== ours.mime || (ours.mime.startsWith('multipart/') && (t.boundary ?? undefined) !== boundary))
            disagreements.push(
              `${JSON.stringify(c.contentType)}: ours ${ours.mime} ${JSON.stringify(boundary)}, ${policy} ${t.type} ${JSON.stringify(t.boundary)}`,
            )
      }
      const v = checkMessage(c.raw, out)
      const pgp = (t: PyNode) =>
        t.type === 'multipart/encrypted' &&
        t.multipart === true &&
        t.boundary === boundary &&
        JSON.stringify(t.parts?.map((p) => [p.type, p.multipart])) === JSON.stringify(PGP_PARTS.map((p) => [p, false]))
      if (v.accept) {
        accepted++
        for (const [policy, t] of Object.entries(py))
          if (!pgp(t))
            disagreements.push(
              `accepted, ${policy} reads ${JSON.stringify(t)}: ${JSON.stringify(c.raw.toString('latin1').slice(0, 300))}`,
            )
      } else if (!pgp(py.compat32) || !pgp(py.default)) refusedWherePythonSeesCleartext++
    })
    expect(disagreements.slice(0, 10)).toEqual([])
    // The generator reaches both sides: headers read, messages accepted, and refusals of what
    // Python reads as something other than PGP/MIME.
    expect(read).toBeGreaterThan(300)
    expect(accepted).toBeGreaterThan(100)
    expect(refusedWherePythonSeesCleartext).toBeGreaterThan(300)
  })
})
