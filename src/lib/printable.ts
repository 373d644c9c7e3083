/**
 * Text from a server (an IMAP NO, an HTTP reason, a relay's Health frame) printed to a terminal
 * must not steer it: escape sequences can retitle the window, clear the screen or draw a fake
 * "all checks ok". Control characters become visible escapes instead.
 */

// C0 controls (newlines too: a server must not start a line of its own), DEL, C1 controls, and the
// Unicode bidi overrides and isolates that reorder what a line appears to say.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

const visible = (c: string): string => {
  const code = c.codePointAt(0) as number
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
}

/** `text` with every control character shown as \xHH (or \u{HHHH}), safe to print on a terminal. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, visible)
}
