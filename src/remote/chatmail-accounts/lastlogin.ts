/**
 * When each account last logged in: dovecot's last_login plugin writes `shared/last-login/<user>`
 * through the dict protocol after a successful IMAP login (a wrong password never gets here), and
 * the expiry deletes accounts that have not logged in for `delete_inactive_after`.
 *
 * Server data in `<dir>/lastlogin`, one line per account: `<canonical address>\t<unix seconds>`.
 * Kept in memory; a login moves the value only when the day changes (the expiry counts days), and
 * the file is rewritten atomically (temp file, fsync, rename) at most every SAVE_MS when it did.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export const LASTLOGIN_FILE = 'lastlogin'
const SAVE_MS = 60_000
const DAY = 86400

export function parseLastLogins(text: string): Map<string, number> {
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    const [address, seconds, ...rest] = line.split('\t')
    if (!address || rest.length > 0 || !/^\d{1,12}$/.test(seconds ?? '')) continue
    map.set(address, Number(seconds))
  }
  return map
}

export function formatLastLogins(map: Map<string, number>): string {
  let text = ''
  for (const [address, seconds] of map) text += `${address}\t${seconds}\n`
  return text
}

/** The key dovecot's last_login plugin sets: `shared/last-login/<user>` (our last_login_key). */
export function lastLoginUser(key: string): string | undefined {
  const m = /^(?:shared\/)?last-login\/(.+)$/.exec(key)
  return m?.[1]
}

export class LastLogins {
  readonly path: string
  private readonly map: Map<string, number>
  private timer: NodeJS.Timeout | undefined

  constructor(
    dir: string,
    private readonly onError: (message: string) => void = () => {},
  ) {
    this.path = join(dir, LASTLOGIN_FILE)
    this.map = existsSync(this.path) ? parseLastLogins(readFileSync(this.path, 'utf8')) : new Map()
  }

  get(address: string): number | undefined {
    return this.map.get(address)
  }

  /** A login at `seconds`: stored when it starts a new day for this account. */
  record(address: string, seconds: number): void {
    const before = this.map.get(address)
    if (before !== undefined && Math.floor(before / DAY) >= Math.floor(seconds / DAY)) return
    this.map.set(address, seconds)
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      this.save()
    }, SAVE_MS)
  }

  /** Forgets these accounts (deleted ones) and writes the file at once. */
  delete(addresses: Iterable<string>): void {
    let changed = false
    for (const a of addresses) changed = this.map.delete(a) || changed
    if (changed) this.save()
  }

  /** Writes the file now (atomically); a failure is reported and retried with the next change. */
  save(): void {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    const tmp = `${this.path}.new`
    try {
      const fd = openSync(tmp, 'w', 0o600)
      try {
        writeSync(fd, formatLastLogins(this.map))
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(tmp, this.path)
    } catch (err) {
      this.onError(`cannot write ${this.path}: ${(err as Error).message}`)
    }
  }
}
