/**
 * The TURN shared secret, read from its file at start, on SIGHUP, and, while it is missing or
 * unreadable, again at most every RETRY_MS when a lookup needs it. Problems are logged once per change.
 */
import { readFileSync, statSync } from 'node:fs'
import type { Logger } from '../lib/log.js'

const RETRY_MS = 5000

type State = { ok: true; secret: string } | { ok: false; problem: string }

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'does not exist'
  if (code === 'EACCES') return 'is not readable by this user (permission denied)'
  if (code === 'EISDIR') return 'is a directory'
  return `cannot be read (${code ?? String(err)})`
}

function readSecret(path: string): State {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    return { ok: false, problem: describeReadError(err) }
  }
  const secret = text.replace(/\r?\n$/, '')
  if (secret === '') return { ok: false, problem: 'is empty' }
  return { ok: true, secret }
}

function modeWarning(path: string): string | undefined {
  try {
    const mode = statSync(path).mode & 0o777
    return mode & 0o077 ? `secret file ${path} has mode ${mode.toString(8)}; it should be 600` : undefined
  } catch {
    return undefined
  }
}

export class SecretStore {
  private state: State = { ok: false, problem: 'not read yet' }
  private lastAttempt = 0

  constructor(
    private path: string,
    private readonly log: Logger,
  ) {}

  /** Read now (start, SIGHUP, or a new path). */
  reload(path: string = this.path, nowMs: number = Date.now()): void {
    const before = this.state
    this.path = path
    this.lastAttempt = nowMs
    this.state = readSecret(path)
    this.report(before)
  }

  /** The secret, or undefined while it cannot be read (then TURN lookups answer not-found). */
  get(nowMs: number): string | undefined {
    if (!this.state.ok && nowMs - this.lastAttempt >= RETRY_MS) this.reload(this.path, nowMs)
    return this.state.ok ? this.state.secret : undefined
  }

  private report(before: State): void {
    const now = this.state
    if (now.ok) {
      if (!before.ok) this.log('info', `TURN secret loaded from ${this.path}`)
      const warning = modeWarning(this.path)
      if (warning) this.log('warn', warning)
    } else if (before.ok || before.problem !== now.problem) {
      this.log('error', `TURN secret file ${this.path} ${now.problem}: TURN lookups answer not-found until it is fixed`)
    }
  }
}
