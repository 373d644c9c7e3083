/**
 * Dovecot's dict protocol, server side, as the dict client (`proxy` dict) of dovecot 2.3 (protocol
 * 3.2, lib-dict/dict-client.h) and 2.4 (protocol 4.0, lib-dict-extra/dict-client.h) speak it. One
 * command per line, arguments separated by TAB, each argument tab-escaped.
 *
 *   H<major>\t<minor>\t<value type>\t<user>\t<dict name>    hello, no reply (2.3: H3\t2, 2.4: H4\t0)
 *   L<key>\t<user>                                          lookup → O<value> | N | F<error>
 *   I<flags>\t<max rows>\t<path>\t<user>                    iterate → O<key>\t<value>… then an empty line
 *   B<id>\t<user>[\t<expire secs>], S<id>\t<key>\t<value>,  transaction steps, no reply
 *   U<id>\t<key>, A<id>\t<key>\t<diff>, T<id>\t<secs>\t<nsecs>,
 *   V<id>\t<yes|no> (2.4: hide values in logs), R<id>
 *   C<id> / D<id> (2.3 only: async)                         commit → O<id> (D: AO<id>)
 *
 * What changed from 2.3 to 2.4 (both captured in test/fixtures/dict/): the hello's version, BEGIN's
 * expire argument, V added, D gone. Replies are the same. Pure functions, no I/O.
 */

/** Longest line dovecot's dict client and server accept (DICT_CLIENT_MAX_LINE_LENGTH). */
export const MAX_LINE_LENGTH = 64 * 1024

export const REPLY = {
  ok: 'O',
  notFound: 'N',
  fail: 'F',
  asyncCommit: 'A',
} as const

export type DictCommand =
  | { kind: 'hello'; major: number; minor: number; valueType: string; user: string; dictName: string }
  | { kind: 'lookup'; key: string; user: string }
  | { kind: 'iterate'; flags: string; path: string; user: string }
  | { kind: 'begin'; id: string; user: string }
  | { kind: 'change'; op: 'set' | 'unset' | 'atomic-inc' | 'timestamp' | 'hide-log-values'; id: string; key: string }
  | { kind: 'commit'; id: string; async: boolean }
  | { kind: 'rollback'; id: string }
  | { kind: 'empty' }
  | { kind: 'unknown'; command: string }

const ESCAPES: Record<string, string> = { '\x01': '\x011', '\t': '\x01t', '\r': '\x01r', '\n': '\x01n' }
const UNESCAPES: Record<string, string> = { '1': '\x01', t: '\t', r: '\r', n: '\n' }

/** Escape a value so it stays one argument on one line. */
export function tabEscape(text: string): string {
  return /[\x01\t\r\n]/.test(text) ? text.replace(/[\x01\t\r\n]/g, (c) => ESCAPES[c] as string) : text
}

/** Undo tabEscape; an escape byte followed by anything else stands for that character. */
export function tabUnescape(text: string): string {
  if (!text.includes('\x01')) return text
  return text.replace(/\x01([\s\S]?)/g, (_m, c: string) => UNESCAPES[c] ?? c)
}

export function splitArgs(text: string): string[] {
  return text.split('\t').map(tabUnescape)
}

function arg(args: string[], i: number): string {
  return args[i] ?? ''
}

function toInt(text: string): number {
  return /^\d{1,9}$/.test(text) ? Number(text) : 0
}

const CHANGE_OPS = { S: 'set', U: 'unset', A: 'atomic-inc', T: 'timestamp', V: 'hide-log-values' } as const

/** Parse one line (without its newline). Never throws: what it does not know is `unknown`. */
export function parseCommand(line: string): DictCommand {
  if (line === '' || line === '\r') return { kind: 'empty' }
  const letter = line[0] as string
  const args = splitArgs(line.slice(1))
  switch (letter) {
    case 'H':
      return {
        kind: 'hello',
        major: toInt(arg(args, 0)),
        minor: toInt(arg(args, 1)),
        valueType: arg(args, 2),
        user: arg(args, 3),
        dictName: arg(args, 4),
      }
    case 'L':
      return { kind: 'lookup', key: arg(args, 0), user: arg(args, 1) }
    case 'I':
      return { kind: 'iterate', flags: arg(args, 0), path: arg(args, 2), user: arg(args, 3) }
    case 'B':
      return { kind: 'begin', id: arg(args, 0), user: arg(args, 1) }
    case 'S':
    case 'U':
    case 'A':
    case 'T':
    case 'V':
      return {
        kind: 'change',
        op: CHANGE_OPS[letter],
        id: arg(args, 0),
        key: letter === 'T' || letter === 'V' ? '' : arg(args, 1),
      }
    case 'C':
    case 'D':
      return { kind: 'commit', id: arg(args, 0), async: letter === 'D' }
    case 'R':
      return { kind: 'rollback', id: arg(args, 0) }
    default:
      return { kind: 'unknown', command: letter }
  }
}

/** `O<value>` when found, `N` when not. */
export function lookupReply(value: string | undefined): string {
  return value === undefined ? `${REPLY.notFound}\n` : `${REPLY.ok}${tabEscape(value)}\n`
}

export function lookupFailReply(error: string): string {
  return `${REPLY.fail}${tabEscape(error)}\n`
}

/** We never list keys: an iteration ends at once with an empty line. */
export function iterateEndReply(): string {
  return '\n'
}

/** A commit that succeeded (nothing is stored: the values we serve are computed). */
export function commitReply(id: string, async: boolean): string {
  return `${async ? REPLY.asyncCommit : ''}${REPLY.ok}${tabEscape(id)}\n`
}

/** The reply a command needs, or undefined for the commands dovecot sends without waiting. */
export function replyFor(
  cmd: DictCommand,
  lookup: (key: string, user: string) => string | undefined,
): string | undefined {
  switch (cmd.kind) {
    case 'lookup':
      return lookupReply(lookup(cmd.key, cmd.user))
    case 'iterate':
      return iterateEndReply()
    case 'commit':
      return commitReply(cmd.id, cmd.async)
    default:
      return undefined
  }
}
