/**
 * The structured header fields chatmail-filter reads: Content-Type (RFC 2045, 2046), a
 * Content-Transfer-Encoding, and the address of From (RFC 5322). Pure.
 *
 * Read by the RFC grammar (quoted strings with their backslash escapes, comments nested and only
 * outside quoted strings, folding whitespace), then held to a narrower form wherever mail parsers
 * are known to read the same text differently: there the value is invalid, and the message is
 * refused, rather than checked as a structure a mail program would not see. Python's `email`
 * package is the reference the tests hold this to (test/unit/filter-headers.test.ts).
 */

export interface ContentType {
  /** type/subtype, lower case */
  mime: string
  /** Parameter names lower-cased; values unquoted. */
  params: Map<string, string>
}

type Token =
  | { kind: 'token'; text: string; start: number; end: number }
  | { kind: 'quoted'; text: string; escaped: boolean; start: number; end: number }
  | { kind: 'special'; text: string; start: number; end: number }

interface Lexed {
  tokens: Token[]
  comments: number
}

/** What ends a token: RFC 2045's tspecials in MIME fields; RFC 5322's specials but "." in addresses (dot-atoms). */
const MIME_SPECIALS = '()<>@,;:\\"/[]?='
const ADDRESS_SPECIALS = '()<>[]:;@\\,"'

/**
 * The lexical tokens of a structured field value (RFC 5322 3.2, RFC 2045 5.1): tokens, quoted
 * strings (unescaped), specials; whitespace, line folds and comments (nested, with escapes) are
 * skipped between them; `specials` are the characters that end a token. Undefined
 * on a lexical error: an unterminated quoted string or comment, a ")" without "(", a control
 * character or a line break that is not a fold, a byte outside US-ASCII; and, when
 * `foldInQuotes` is false, a fold inside a quoted string (parsers differ on what remains of it).
 */
function lex(value: string, specials: string, foldInQuotes: boolean): Lexed | undefined {
  const tokens: Token[] = []
  let comments = 0
  let i = 0
  const n = value.length
  /** The length of a fold (CRLF or LF, then a space or tab) at i, or 0. */
  const fold = (at: number): number => {
    const eol = value[at] === '\r' && value[at + 1] === '\n' ? 2 : value[at] === '\n' ? 1 : 0
    return eol > 0 && (value[at + eol] === ' ' || value[at + eol] === '\t') ? eol : 0
  }
  /**
   * The next unit inside a comment or a quoted string: a quoted-pair (`char` the character
   * escaped), a fold (`char` empty), or one printable character or tab; undefined at the end of
   * the value or on anything else.
   */
  const unit = (at: number): { len: number; char: string; kind: 'pair' | 'fold' | 'char' } | undefined => {
    const d = value[at]
    if (d === undefined) return undefined
    if (d === '\\') {
      const e = value[at + 1]
      return e !== undefined && printable(e) ? { len: 2, char: e, kind: 'pair' } : undefined
    }
    if (d === '\r' || d === '\n') {
      const f = fold(at)
      return f > 0 ? { len: f, char: '', kind: 'fold' } : undefined
    }
    return printable(d) ? { len: 1, char: d, kind: 'char' } : undefined
  }
  while (i < n) {
    const c = value[i] as string
    const code = c.charCodeAt(0)
    if (c === ' ' || c === '\t') {
      i++
      continue
    }
    if (c === '\r' || c === '\n') {
      const f = fold(i)
      if (f === 0) return undefined
      i += f
      continue
    }
    if (code < 0x20 || code > 0x7e) return undefined
    if (c === '(') {
      let depth = 0
      do {
        const u = unit(i)
        if (!u) return undefined
        i += u.len
        if (u.kind === 'char') depth += u.char === '(' ? 1 : u.char === ')' ? -1 : 0
      } while (depth > 0)
      comments++
      continue
    }
    if (c === ')') return undefined
    if (c === '"') {
      const start = i
      let text = ''
      let escaped = false
      i++
      for (;;) {
        const u = unit(i)
        if (!u || (u.kind === 'fold' && !foldInQuotes)) return undefined
        i += u.len
        if (u.kind === 'char' && u.char === '"') break
        text += u.char
        if (u.kind === 'pair') escaped = true
      }
      tokens.push({ kind: 'quoted', text, escaped, start, end: i })
      continue
    }
    if (specials.includes(c)) {
      tokens.push({ kind: 'special', text: c, start: i, end: i + 1 })
      i++
      continue
    }
    const start = i
    while (i < n) {
      const d = value[i] as string
      const dc = d.charCodeAt(0)
      if (dc <= 0x20 || dc > 0x7e || specials.includes(d)) break
      i++
    }
    tokens.push({ kind: 'token', text: value.slice(start, i), start, end: i })
  }
  return { tokens, comments }
}

function printable(c: string): boolean {
  const k = c.charCodeAt(0)
  return (k >= 0x20 && k <= 0x7e) || k === 9
}

/** RFC 2046 5.1.1: 1 to 70 of these, the last not a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/

/**
 * `type/subtype; name=value; name="quoted value"` (RFC 2045 5.1), parameter names lower-cased.
 * Undefined (invalid, so refused) also where parsers disagree on it:
 * - a comment anywhere (Python reads `boundary=zz (c)` as "zz (c)" and `text/plain (c)` as that
 *   type; mail programs do not write comments here);
 * - space between type, "/" and subtype, and anything but `;` parameters after them;
 * - a parameter given twice, or both plainly and in RFC 2231 form (`name*`, `name*0`...);
 * - a boundary in RFC 2231 form (`boundary*=`, `boundary*0=`: some parsers join the pieces,
 *   some do not), one with a backslash escape, one folded across lines, an unquoted one with an
 *   apostrophe (Python's newer parser reads `boundary=a'b` as none: the RFC 2231 charset'lang'
 *   separator), or one RFC 2046 does not allow (characters outside its set, over 70, a space at
 *   the end that some parsers strip).
 */
export function parseContentType(value: string): ContentType | undefined {
  const lexed = lex(value, MIME_SPECIALS, false)
  if (!lexed || lexed.comments > 0) return undefined
  const t = lexed.tokens
  const [type, slash, subtype] = t
  if (type?.kind !== 'token' || slash?.text !== '/' || subtype?.kind !== 'token') return undefined
  if (type.end !== slash.start || slash.end !== subtype.start) return undefined
  const mime = `${type.text}/${subtype.text}`.toLowerCase()
  if (!/^[a-z0-9!#$%&'*+^_`{|}~.-]+\/[a-z0-9!#$%&'*+^_`{|}~.-]+$/.test(mime)) return undefined
  const params = new Map<string, string>()
  const plain = new Set<string>()
  const extended = new Set<string>()
  let i = 3
  while (i < t.length) {
    if (t[i]?.text !== ';' || t[i]?.kind !== 'special') return undefined
    i++
    if (i === t.length) break // a ";" at the end: tolerated, as parsers do
    const name = t[i]
    const eq = t[i + 1]
    const val = t[i + 2]
    if (name?.kind !== 'token' || eq?.kind !== 'special' || eq.text !== '=') return undefined
    if (val === undefined || (val.kind !== 'token' && val.kind !== 'quoted')) return undefined
    i += 3
    const key = name.text.toLowerCase()
    if (params.has(key)) return undefined
    const star = key.indexOf('*')
    const base = star < 0 ? key : key.slice(0, star)
    if (star < 0 ? extended.has(base) : plain.has(base)) return undefined
    ;(star < 0 ? plain : extended).add(base)
    if (base === 'boundary' && star >= 0) return undefined
    if (key === 'boundary' && (val.kind === 'quoted' ? val.escaped : val.text.includes("'"))) return undefined
    if (key === 'boundary' && !BOUNDARY.test(val.text)) return undefined
    params.set(key, val.text)
  }
  return { mime, params }
}

/**
 * A Content-Transfer-Encoding value (RFC 2045 6.1), lower-cased: one token, nothing else (no
 * comment, no quotes); undefined otherwise.
 */
export function parseEncoding(value: string): string | undefined {
  const lexed = lex(value, MIME_SPECIALS, false)
  if (!lexed || lexed.comments > 0 || lexed.tokens.length !== 1) return undefined
  const [tok] = lexed.tokens
  return tok?.kind === 'token' ? tok.text.toLowerCase() : undefined
}

/**
 * The address of a From header holding one mailbox (RFC 5322 3.4: `Name <a@b>`, `"Name" <a@b>`,
 * `a@b`, with comments anywhere), lower-cased; undefined when there is none, or more than one.
 * The local part is a dot-atom or a quoted string without escapes; the domain a dot-atom or an
 * address literal.
 */
export function headerAddress(value: string): string | undefined {
  const lexed = lex(value, ADDRESS_SPECIALS, true)
  if (!lexed) return undefined
  let t = lexed.tokens
  const lt = t.findIndex((x) => x.kind === 'special' && x.text === '<')
  if (lt >= 0) {
    // display-name <addr-spec>; the display name is not read (any words but angle brackets)
    if (t.slice(0, lt).some((x) => x.kind === 'special' && x.text === '>')) return undefined
    if (t.length < lt + 2 || t[t.length - 1]?.text !== '>' || t[t.length - 1]?.kind !== 'special') return undefined
    t = t.slice(lt + 1, -1)
  }
  return addrSpec(value, t)
}

function addrSpec(value: string, t: Token[]): string | undefined {
  const at = t.findIndex((x) => x.kind === 'special' && x.text === '@')
  const local = t[0]
  if (at !== 1 || local === undefined) return undefined
  if (local.kind === 'special' || (local.kind === 'quoted' && local.escaped)) return undefined
  const localText = local.text
  if (local.kind === 'quoted' ? /[\s"\\@<>(),;:[\]]/.test(localText) || localText === '' : !dotAtom(localText))
    return undefined
  const rest = t.slice(2)
  let domain: string
  if (rest.length === 1 && rest[0]?.kind === 'token' && dotAtom(rest[0].text)) domain = rest[0].text
  else if (rest.length >= 3 && rest[0]?.text === '[' && rest[rest.length - 1]?.text === ']') {
    // An address literal, as written (no space or comment inside it).
    const open = rest[0] as Token
    const close = rest[rest.length - 1] as Token
    const inner = value.slice(open.end, close.start)
    if (!/^[A-Za-z0-9.:]+$/.test(inner)) return undefined
    domain = `[${inner}]`
  } else return undefined
  return `${localText}@${domain}`.toLowerCase()
}

function dotAtom(s: string): boolean {
  return /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(s)
}

/** A header value with its folds removed (RFC 5322 2.2.3) and trimmed. */
export function unfold(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '').trim()
}
