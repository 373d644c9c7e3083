/**
 * The config format of the programs that run on the host: one `key = value` per line, `#` starts a
 * comment line, blank lines ignored, no quotes. Pure; errors name the line.
 */
export function readKeyValues<K extends string>(text: string, known: readonly K[], errors: string[]): Map<K, string> {
  const values = new Map<K, string>()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const eq = line.indexOf('=')
    const key = (eq < 0 ? line : line.slice(0, eq)).trim()
    if (eq < 0) errors.push(`line ${i + 1}: expected key = value`)
    else if (!(known as readonly string[]).includes(key)) errors.push(`line ${i + 1}: unknown key "${key}"`)
    else if (values.has(key as K)) errors.push(`line ${i + 1}: "${key}" is set twice`)
    else values.set(key as K, line.slice(eq + 1).trim())
  })
  return values
}

/** An absolute path without spaces or control characters; required. */
export function parsePath(name: string, text: string | undefined, errors: string[]): string {
  if (text === undefined || text === '') errors.push(`${name} is required`)
  else if (!text.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(text))
    errors.push(`${name} "${text}" is not an absolute path`)
  return text ?? ''
}

export function parsePort(name: string, text: string, errors: string[]): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) errors.push(`${name} "${text}" is not a port from 1 to 65535`)
  return n
}

export function parseMode(name: string, text: string | undefined, fallback: number, errors: string[]): number {
  if (text === undefined || text === '') return fallback
  if (!/^0?[0-7]{3}$/.test(text)) errors.push(`${name} "${text}" is not an octal mode like 0660`)
  return Number.parseInt(text, 8)
}

export function parseFlag(name: string, text: string | undefined, errors: string[]): boolean {
  if (text === undefined || /^(no|false|0)$/i.test(text)) return false
  if (/^(yes|true|1)$/i.test(text)) return true
  errors.push(`${name} "${text}" is not yes or no`)
  return false
}

/** A whole number in [min, max]; absent or empty: the fallback. */
export function parseCount(
  name: string,
  text: string | undefined,
  fallback: number,
  errors: string[],
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (text === undefined || text === '') return fallback
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max) {
    errors.push(`${name} "${text}" is not a whole number from ${min} to ${max}`)
    return fallback
  }
  return n
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Bytes as operators write them: `500000`, `200M`, `1G` (powers of 1024). */
export function parseSize(name: string, text: string | undefined, fallback: number, errors: string[]): number {
  if (text === undefined || text === '') return fallback
  const m = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(text)
  if (!m) {
    errors.push(`${name} "${text}" is not a size like 500M or 1G`)
    return fallback
  }
  return Number(m[1]) * (SIZE_UNITS[(m[2] as string).toLowerCase()] as number)
}
