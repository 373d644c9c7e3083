/** Durations as operators write them: `3600`, `90s`, `30m`, `12h`, `5d`, or combined (`1d12h`). */

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }
export const MAX_DURATION_SECONDS = 365 * 86400

export type DurationResult = { ok: true; seconds: number } | { ok: false; reason: string }

export function parseDuration(input: string): DurationResult {
  const text = input.trim().toLowerCase()
  if (text === '') return { ok: false, reason: 'is empty' }
  if (text.startsWith('-')) return { ok: false, reason: 'must be positive' }
  let seconds: number
  if (/^\d+$/.test(text)) {
    seconds = Number(text)
  } else if (/^(\d+[smhdw])+$/.test(text)) {
    seconds = 0
    for (const m of text.matchAll(/(\d+)([smhdw])/g)) seconds += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number)
  } else {
    return { ok: false, reason: 'is not a duration (use seconds, or a number with s, m, h, d or w: 90s, 30m, 12h, 5d)' }
  }
  if (!Number.isSafeInteger(seconds) || seconds > MAX_DURATION_SECONDS) {
    return { ok: false, reason: 'is longer than 365d' }
  }
  if (seconds === 0) return { ok: false, reason: 'must be longer than zero' }
  return { ok: true, seconds }
}

/** The shortest exact spelling: 86400 → "1d", 5400 → "1h30m". */
export function formatDuration(totalSeconds: number): string {
  if (totalSeconds <= 0) return '0s'
  let rest = Math.floor(totalSeconds)
  let out = ''
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`
      rest %= size
    }
  }
  return out
}
