/**
 * The value kinds of chatmail.toml's keys (valibot schemas): each error names the key and what is
 * allowed. The sections' schemas in schema.ts, mail.ts and accounts.ts are built from these.
 */
import * as v from 'valibot'
import { parseDuration } from '../protocols/duration.js'
import { checkValue, type ValueCheck } from './values.js'

export const duration = (what: string) =>
  v.pipe(
    v.union([v.string(), v.number()], `${what} must be a duration such as "24h"`),
    v.check((s) => checkValue(String(s)) === undefined, `${what} must not contain control characters`),
    v.check(
      (s) => parseDuration(String(s)).ok,
      `${what} must be a duration from 1s to 365d (seconds, or 90s, 30m, 12h, 5d)`,
    ),
  )

export const count = (what: string, min: number, max: number) =>
  v.pipe(
    v.number(`${what} must be a whole number`),
    v.integer(`${what} must be a whole number`),
    v.minValue(min, `${what} must be from ${min} to ${max}`),
    v.maxValue(max, `${what} must be from ${min} to ${max}`),
  )

export const size = (what: string) =>
  v.pipe(
    v.string(`${what} must be a size such as "1G"`),
    v.regex(/^\d+[KMGT]?$/i, `${what} must be a size such as "1G"`),
  )

/** A string that passes `checks` (and never holds a control character); "" too when `orEmpty`. */
export const text = (what: string, checks: ValueCheck[] = [], orEmpty = false) =>
  v.pipe(
    v.string(`${what} must be a string`),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed || (orEmpty && dataset.value === '')) return
      const why = checkValue(dataset.value, ...checks)
      if (why) addIssue({ message: `${what} ${why}${orEmpty ? ', or "" for none' : ''}` })
    }),
  )
