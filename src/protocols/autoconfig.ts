/**
 * Thunderbird autoconfig XML (config-v1.1.xml), read the way Delta Chat core reads it
 * (core's configure/auto_mozilla.rs, studied for facts): every <incomingServer> and
 * <outgoingServer> element with a `type` attribute; inside, the text of <hostname>, <port>,
 * <socketType> and <username> (tag names case-insensitive, text trimmed); a server missing
 * hostname, port or username is dropped; %EMAILADDRESS%, %EMAILLOCALPART% and %EMAILDOMAIN% are
 * filled in. Pure: no I/O.
 */

export type SocketType = 'ssl' | 'starttls' | 'plain' | 'automatic'

export interface AutoconfigServer {
  direction: 'incoming' | 'outgoing'
  /** `imap`, `smtp`, `pop3`, … (lower case). */
  type: string
  hostname: string
  /** 0 when the port text is not a number (core does the same). */
  port: number
  socketType: SocketType
  username: string
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decodeText(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1))
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : m
    }
    return ENTITIES[e.toLowerCase()] ?? m
  })
}

type Token = { kind: 'start' | 'end'; name: string; attrs: string } | { kind: 'text'; text: string }

/** Start tags, end tags and text; comments, declarations and processing instructions are dropped. */
function tokenize(xml: string): Token[] {
  const tokens: Token[] = []
  const re = /<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>|<[?!][^>]*>|<(\/?)([A-Za-z_][\w:.-]*)([^>]*?)(\/?)>|([^<]+)/g
  for (const m of xml.matchAll(re)) {
    if (m[1] !== undefined) tokens.push({ kind: 'text', text: m[1] })
    else if (m[3] !== undefined) {
      const name = m[3].toLowerCase()
      if (m[2]) tokens.push({ kind: 'end', name, attrs: '' })
      else {
        tokens.push({ kind: 'start', name, attrs: m[4] ?? '' })
        if (m[5]) tokens.push({ kind: 'end', name, attrs: '' })
      }
    } else if (m[6] !== undefined) tokens.push({ kind: 'text', text: decodeText(m[6]) })
  }
  return tokens
}

function attribute(attrs: string, name: string): string | undefined {
  for (const m of attrs.matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    if (m[1]!.toLowerCase() === name) return decodeText(m[2] ?? m[3] ?? '').trim()
  }
  return undefined
}

function socketType(text: string): SocketType {
  const t = text.toLowerCase()
  return t === 'ssl' || t === 'starttls' || t === 'plain' ? t : 'automatic'
}

/** The servers an autoconfig document offers to `address`, in document order. */
export function parseAutoconfig(xml: string, address: string): AutoconfigServer[] {
  const at = address.lastIndexOf('@')
  const local = at >= 0 ? address.slice(0, at) : address
  const domain = at >= 0 ? address.slice(at + 1) : ''
  const fill = (v: string) =>
    v.replaceAll('%EMAILADDRESS%', address).replaceAll('%EMAILLOCALPART%', local).replaceAll('%EMAILDOMAIN%', domain)
  const tokens = tokenize(xml)
  const servers: AutoconfigServer[] = []
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.kind !== 'start' || (t.name !== 'incomingserver' && t.name !== 'outgoingserver')) continue
    const end = t.name
    const fields: Record<string, string> = {}
    let tag = ''
    for (i++; i < tokens.length; i++) {
      const u = tokens[i]!
      if (u.kind === 'end' && u.name === end) break
      if (u.kind === 'start') tag = u.name
      else if (u.kind === 'text' && u.text.trim() && ['hostname', 'port', 'sockettype', 'username'].includes(tag))
        fields[tag] = u.text.trim()
    }
    if (fields.hostname === undefined || fields.port === undefined || fields.username === undefined) continue
    const port = /^\d+$/.test(fields.port) && Number(fields.port) < 65536 ? Number(fields.port) : 0
    servers.push({
      direction: end === 'incomingserver' ? 'incoming' : 'outgoing',
      type: (attribute(t.attrs, 'type') ?? '').toLowerCase(),
      hostname: fill(fields.hostname),
      port,
      socketType: socketType(fields.sockettype ?? ''),
      username: fill(fields.username),
    })
  }
  return servers
}
