/** Header values chatmail-filter reads: Content-Type and the address of From. Pure. */

export interface ContentType {
  /** type/subtype, lower case */
  mime: string
  params: Map<string, string>
}

/** `type/subtype; name=value; name="quoted value"` (parameter names lower-cased). */
export function parseContentType(value: string): ContentType | undefined {
  const s = value.replace(/\([^()]*\)/g, ' ')
  const semi = s.indexOf(';')
  const mime = (semi < 0 ? s : s.slice(0, semi)).trim().toLowerCase()
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mime)) return undefined
  const params = new Map<string, string>()
  const re = /;\s*([A-Za-z0-9!#$&^_.+*'-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g
  const rest = semi < 0 ? '' : s.slice(semi)
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    const name = (m[1] as string).toLowerCase()
    if (!params.has(name)) params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''))
  }
  return { mime, params }
}

/** The address of a From header (`Name <a@b>`, `a@b`, `a@b (comment)`), lower-cased; undefined when there is none. */
export function headerAddress(value: string): string | undefined {
  const v = value.replace(/\([^()]*\)/g, ' ').trim()
  const angle = /<([^<>]*)>\s*$/.exec(v)
  const addr = (angle ? (angle[1] as string) : v).trim().toLowerCase()
  if (!/^[^\s@<>()",;]+@[^\s@<>()",;]+$/.test(addr)) return undefined
  return addr
}

export function unfold(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '').trim()
}
