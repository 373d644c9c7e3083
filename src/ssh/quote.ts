/**
 * The one shell quoting function: single-quotes a string for a POSIX shell, leaving a word made
 * only of characters no shell treats specially (`A-Za-z0-9_.:/=+@-`) as it is.
 */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_.:/=+@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}
