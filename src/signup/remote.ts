import { ChatmailError, cannotRun, ExitCode } from '../lib/errors.js'
import { printable } from '../lib/printable.js'

export interface Invite {
  token: string
  uses: number
  /** Unix seconds. */
  expires: number
  registration: string
}

/**
 * The service's answer to `chatmail-accounts.js invite`, checked. The server's text reaches the
 * terminal (and --json): the token must be the URL-safe token, the counts numbers a date can be
 * made of, and the registration is shown with its control characters escaped (lib/printable.ts).
 */
export function parseInvite(stdout: string): Invite | undefined {
  try {
    const j = JSON.parse(stdout) as Record<string, unknown>
    if (j.ok !== true || typeof j.token !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(j.token)) return undefined
    const { uses, expires } = j
    if (typeof uses !== 'number' || !Number.isSafeInteger(uses) || uses < 1) return undefined
    // A Date holds ±8.64e15 ms: beyond that toISOString() throws.
    if (typeof expires !== 'number' || !Number.isSafeInteger(expires) || Math.abs(expires) > 8.64e12) return undefined
    return { token: j.token, uses, expires, registration: printable(String(j.registration)) }
  } catch {
    return undefined
  }
}

/** Why the service made no invite: the last line of its stderr, without `error: `, printable. */
export function inviteFailure(stderr: string): string {
  return printable((stderr.trim().split('\n').pop() ?? '').replace(/^error: /, ''))
}

/**
 * The invite of `chatmail-accounts.js invite` on the host, from its exit code and output. Exit 1 is
 * the service's own refusal ({"ok":false,"reason"}): exit 1 here too; anything else that made no
 * invite (no service, an old version, SSH) could not run: exit 3.
 */
export function inviteFromAnswer(out: { code: number | null; stdout: string; stderr: string }): Invite {
  const invite = out.code === 0 ? parseInvite(out.stdout) : undefined
  if (invite) return invite
  if (out.code === 1) {
    const why = refusalReason(out.stdout) || inviteFailure(out.stderr)
    throw new ChatmailError(
      `the server refused to create an invite${why ? `: ${why}` : ''}`,
      ExitCode.failed,
      "see the service's log: journalctl -u chatmail-accounts",
    )
  }
  const why = inviteFailure(out.stderr)
  throw cannotRun(
    `the server did not create an invite${why ? `: ${why}` : ''}`,
    'is the server deployed with this version (chatmail deploy host)?',
  )
}

function refusalReason(stdout: string): string {
  try {
    const j = JSON.parse(stdout) as { reason?: unknown }
    return typeof j.reason === 'string' ? printable(j.reason) : ''
  } catch {
    return ''
  }
}
