/**
 * The expiry's sweep of orphan mailboxes (run as root by `chatmail-accounts expire`): mailbox
 * directories below `<mail root>/<domain>/` whose local part is no account's. Expiries before the
 * `expiring` list (store.ts) could be cut off after removing an account from the accounts file but
 * before deleting its mailbox, leaving a directory no one could log in to and no expiry would ever
 * delete.
 *
 * Careful by construction: a directory stays when its name is the local part of any address in the
 * accounts file, on the expiring list (the expiry's first step deletes those), in the exempt list
 * (the doctor's) or in dovecot's users file (an operator's accounts), whatever the domain; when any
 * of those cannot be read, or the accounts file has a line it cannot parse, nothing is removed. The
 * directories are listed BEFORE the files are read: an account is written to the accounts file
 * before dovecot can make its mailbox, so a mailbox that exists when listed has its account in the
 * file read afterwards. And a directory modified within `minAgeSeconds` stays.
 */
import { type Dirent, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { ACCOUNTS_FILE, EXPIRING_FILE, parseAccounts } from './store.js'

export interface OrphanSweep {
  /** chatmail-accounts' data_dir (its `accounts` and `expiring` files). */
  dataDir: string
  /** `<mail root>/<domain>`: one directory per local part. */
  domainDir: string
  /** dovecot's passwd-file of an operator's accounts. */
  usersFile: string
  /** Addresses whose mailboxes are never touched (the doctor's). */
  exempt: string[]
  /** Unix seconds. */
  now: number
  /** Directories modified more recently than this stay. */
  minAgeSeconds: number
}

export type OrphanResult =
  | { ok: true; removed: number; errors: string[] }
  /** Nothing was removed: why. */
  | { ok: false; reason: string }

const localPart = (address: string): string => {
  const at = address.lastIndexOf('@')
  return (at < 0 ? address : address.slice(0, at)).toLowerCase()
}

function readText(path: string, missingIsEmpty: boolean): string | { reason: string } {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (missingIsEmpty && code === 'ENOENT') return ''
    return { reason: `cannot read ${path}: ${code ?? String(err)}` }
  }
}

/** The local parts whose mailboxes must stay, or why they cannot be known. */
function keptLocals(o: OrphanSweep): Set<string> | { reason: string } {
  const accountsPath = join(o.dataDir, ACCOUNTS_FILE)
  // The service creates the accounts file at start: missing, it is not the file we think it is.
  const accounts = readText(accountsPath, false)
  if (typeof accounts !== 'string') return accounts
  const parsed = parseAccounts(accounts)
  if (parsed.skipped.length > 0) {
    return { reason: `${accountsPath} has lines it cannot read (${parsed.skipped.slice(0, 10).join(', ')})` }
  }
  const expiring = readText(join(o.dataDir, EXPIRING_FILE), true)
  if (typeof expiring !== 'string') return expiring
  // No users file: dovecot has no such accounts either.
  const users = readText(o.usersFile, true)
  if (typeof users !== 'string') return users
  const kept = new Set<string>()
  for (const a of parsed.accounts.keys()) kept.add(localPart(a))
  for (const line of expiring.split('\n')) if (line.trim() !== '') kept.add(localPart(line.trim()))
  for (const a of o.exempt) kept.add(localPart(a))
  for (const line of users.split('\n')) {
    const user = (line.split(':')[0] ?? '').trim()
    if (user !== '' && !user.startsWith('#')) kept.add(localPart(user))
  }
  return kept
}

/** Removes the orphan mailboxes in o.domainDir (see the top of this file). */
export function sweepOrphans(o: OrphanSweep): OrphanResult {
  let dirs: Dirent[]
  try {
    if (!lstatSync(o.domainDir).isDirectory()) return { ok: false, reason: `${o.domainDir} is not a directory` }
    dirs = readdirSync(o.domainDir, { withFileTypes: true }).filter((e) => e.isDirectory())
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { ok: true, removed: 0, errors: [] } // no mailbox yet
    return { ok: false, reason: `cannot read ${o.domainDir}: ${code ?? String(err)}` }
  }
  const kept = keptLocals(o)
  if (!(kept instanceof Set)) return { ok: false, reason: kept.reason }
  let removed = 0
  const errors: string[] = []
  for (const e of dirs) {
    if (kept.has(e.name.toLowerCase())) continue
    const dir = join(o.domainDir, e.name)
    try {
      const st = lstatSync(dir)
      if (!st.isDirectory() || st.mtimeMs / 1000 > o.now - o.minAgeSeconds) continue
      rmSync(dir, { recursive: true, force: true })
      removed++
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') errors.push(`cannot remove the orphan mailbox ${dir}: ${code ?? String(err)}`)
    }
  }
  return { ok: true, removed, errors }
}
