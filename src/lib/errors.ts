/**
 * Exit codes shared by every command (documented in README and in each command's --help):
 *   0  success / every check passed (warnings allowed)
 *   1  the command ran and found a problem (a check failed, a credential is invalid, a deploy failed)
 *   2  usage error: unknown flag, bad argument or flag value
 *   3  could not run at all: missing or broken config, unreadable file, unreachable host
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  cannotRun: 3,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** An error meant for the user: one line of what is wrong, optionally one hint of what to do. */
export class ChatmailError extends Error {
  readonly exitCode: ExitCode
  readonly hint: string | undefined
  constructor(message: string, exitCode: ExitCode = ExitCode.cannotRun, hint?: string) {
    super(message)
    this.name = 'ChatmailError'
    this.exitCode = exitCode
    this.hint = hint
  }
}

export const usageError = (message: string, hint?: string): ChatmailError =>
  new ChatmailError(message, ExitCode.usage, hint)

export const cannotRun = (message: string, hint?: string): ChatmailError =>
  new ChatmailError(message, ExitCode.cannotRun, hint)

/** Collapse a message to a single line: users get one line, never a dump. */
export function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^See more help with/i.test(l))
    .join('; ')
}

/** Node system errors (ENOENT, EACCES, ...) of reading a file turned into a sentence about the path. */
export function describeFsError(err: unknown, path: string, what = 'file'): ChatmailError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case 'ENOENT':
      return cannotRun(`${what} ${path} does not exist`)
    case 'EACCES':
    case 'EPERM':
      return cannotRun(`${what} ${path} is not readable by this user`, 'check its owner and mode')
    case 'EISDIR':
      return cannotRun(`${what} ${path} is a directory, not a file`)
    default:
      return cannotRun(`cannot read ${what} ${path}: ${(err as Error)?.message ?? String(err)}`)
  }
}

/** The same for writing a file (a report the command was asked to write). */
export function describeWriteError(err: unknown, path: string, what = 'file'): ChatmailError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return cannotRun(`cannot write ${what} ${path}: its directory does not exist`, 'create it, or name another path')
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return cannotRun(
        `cannot write ${what} ${path}: not writable by this user`,
        'check the owner and mode of its directory',
      )
    case 'EISDIR':
      return cannotRun(`cannot write ${what} ${path}: it is a directory`, 'name a file')
    default:
      return cannotRun(`cannot write ${what} ${path}: ${(err as Error)?.message ?? String(err)}`)
  }
}

/** What every command prints on stdout with --json when it could not do its job. */
export function toJsonError(error: { message: string; hint?: string | undefined; exitCode: number }) {
  return {
    status: 'error' as const,
    error: { message: error.message, hint: error.hint ?? null, exitCode: error.exitCode },
  }
}
