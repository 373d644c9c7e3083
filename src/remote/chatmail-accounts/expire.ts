/**
 * The daily expiry of old messages (`chatmail-accounts expire CONFIG`, run as root by
 * chatmail-expire.timer): in every mailbox below `<mail root>/<domain>/`, message files in the
 * maildirs' `cur/` and `new/` whose modification time (dovecot's delivery time) is older than
 * `delete_mails_after` are deleted, and in `cur/` (seen by a client) those larger than
 * `large_message_size` older than `delete_large_after`. Mailboxes of exempt addresses (the
 * doctor's) are left alone. Dovecot notices the missing files at its next sync; the caller resyncs
 * the mailboxes that changed, so the quota counts them at once.
 */
import { type Dirent, lstatSync, readdirSync, realpathSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'

export interface MessageExpiry {
  /** Unix seconds: messages modified before this go. */
  mailsBefore: number
  /** Unix seconds: large seen messages modified before this go. */
  largeBefore: number
  largeSize: number
}

export interface MessageExpiryResult {
  /** Local part → number of deleted messages. */
  deleted: Map<string, number>
  errors: string[]
}

function entries(dir: string, errors: string[]): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') errors.push(`cannot read ${dir}: ${code ?? String(err)}`)
    return []
  }
}

/** Deletes the old message files below one mailbox directory; returns how many. */
function expireMailbox(dir: string, rule: MessageExpiry, errors: string[]): number {
  let n = 0
  for (const e of entries(dir, errors)) {
    if (!e.isDirectory()) continue
    const sub = join(dir, e.name)
    if (e.name === 'tmp') continue
    if (e.name !== 'cur' && e.name !== 'new') {
      n += expireMailbox(sub, rule, errors)
      continue
    }
    for (const f of entries(sub, errors)) {
      if (!f.isFile()) continue
      const path = join(sub, f.name)
      try {
        const st = lstatSync(path)
        const mtime = Math.floor(st.mtimeMs / 1000)
        const old = mtime < rule.mailsBefore
        const large = e.name === 'cur' && st.size > rule.largeSize && mtime < rule.largeBefore
        if (!old && !large) continue
        unlinkSync(path)
        n++
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'ENOENT') errors.push(`cannot delete ${path}: ${code ?? String(err)}`)
      }
    }
  }
  return n
}

/** Every mailbox in `domainDir` (one directory per local part) but the exempt ones. */
export function expireMessages(domainDir: string, rule: MessageExpiry, exemptLocals: Set<string>): MessageExpiryResult {
  const deleted = new Map<string, number>()
  const errors: string[] = []
  for (const e of entries(domainDir, errors)) {
    if (!e.isDirectory() || exemptLocals.has(e.name)) continue
    const n = expireMailbox(join(domainDir, e.name), rule, errors)
    if (n > 0) deleted.set(e.name, n)
  }
  return { deleted, errors }
}

/**
 * Whether the expiry, as root, may delete `home` as the mailbox of `address`: only when it is
 * exactly one directory named after the address's local part right below the domain's directory,
 * `<mail root>/<domain>/<local>`, compared as real paths (no `.` or `..` name, no symlink, nothing
 * that resolves elsewhere). Whatever the service or a damaged file says, nothing else is ever
 * removed recursively. `{ gone: true }`: there is nothing to delete.
 */
export function mailboxToDelete(
  mailRoot: string,
  domain: string,
  address: string,
  home: string,
): { ok: true; path: string } | { ok: false; reason: string } | { gone: true } {
  const at = address.lastIndexOf('@')
  const local = address.slice(0, at)
  const refuse = (why: string) => ({ ok: false as const, reason: `not deleting ${home} for ${address}: ${why}` })
  if (at <= 0 || local === '.' || local === '..' || local.includes('/') || local.includes('\0')) {
    return refuse('its local part is not one directory name')
  }
  const domainDir = join(mailRoot, domain.toLowerCase())
  if (home !== `${domainDir}/${local}`) return refuse(`it is not ${domainDir}/${local}`)
  let realDomainDir: string
  try {
    realDomainDir = realpathSync(domainDir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { gone: true }
    return refuse(`cannot resolve ${domainDir}: ${(err as Error).message}`)
  }
  try {
    const st = lstatSync(home)
    if (!st.isDirectory()) return refuse('it is not a directory')
    if (realpathSync(home) !== join(realDomainDir, local)) return refuse(`it resolves outside ${domainDir}`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { gone: true }
    return refuse((err as Error).message)
  }
  return { ok: true, path: home }
}
