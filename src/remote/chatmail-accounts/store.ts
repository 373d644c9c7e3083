/**
 * The accounts: server data, created here and never rewritten by a deploy. One append-only file,
 * `<dir>/accounts`, one line per account: `<canonical address>\t<password hash>\t<unix time>`.
 * Read whole at start into a Map; every creation appends one line with a single write(2) on an
 * O_APPEND descriptor (the page cache keeps it across a crash of this process; fdatasync batches
 * them at most every SYNC_MS so a power loss costs at most that much). Removing accounts (the
 * expiry of inactive ones) rewrites the file: the remaining lines to a temp file, fsync, rename
 * over the old one, then appends go to the new file; the map changes only after the rename.
 *
 * Removed accounts are first written to `<dir>/expiring` (the same atomic way), one address a
 * line, and stay there until the expiry has deleted their mailboxes (`forgetExpired`): an expiry
 * cut off half-way resumes from that list on its next run, and no one can make such an address
 * again (and find the old mail in its mailbox) while its mailbox may still be there.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import type { Logger } from '../lib/log.js'

export const ACCOUNTS_FILE = 'accounts'
export const EXPIRING_FILE = 'expiring'
const SYNC_MS = 200

export interface Account {
  address: string
  hash: string
  created: number
}

export interface LoadResult {
  accounts: Map<string, Account>
  /** Lines that could not be read (a torn last line after a power loss, a hand edit). */
  skipped: number[]
}

export function parseAccounts(text: string): LoadResult {
  const accounts = new Map<string, Account>()
  const skipped: number[] = []
  text.split('\n').forEach((line, i) => {
    if (line === '' || line.startsWith('#')) return
    const [address, hash, created, ...rest] = line.split('\t')
    if (!address || !hash || rest.length > 0 || !/^\d+$/.test(created ?? '') || !address.includes('@')) {
      skipped.push(i + 1)
      return
    }
    accounts.set(address, { address, hash, created: Number(created) })
  })
  return { accounts, skipped }
}

/** The expiring list: one address a line; anything else is skipped. */
export function parseExpiring(text: string): { addresses: string[]; skipped: number[] } {
  const addresses: string[] = []
  const skipped: number[] = []
  text.split('\n').forEach((line, i) => {
    if (line === '') return
    if (/^[^\s@]+@[^\s@]+$/.test(line)) addresses.push(line)
    else skipped.push(i + 1)
  })
  return { addresses, skipped }
}

/**
 * Lines of a server-data file that could not be read (a torn last line after a power loss, a hand
 * edit) are skipped; the next rewrite would leave them out, so the file as it was is kept beside
 * it (`<file>.damaged-<mtime>`, once per version) and the log says where.
 */
function keepDamaged(path: string, skipped: number[], log: Logger): void {
  if (skipped.length === 0) return
  const copy = damagedCopy(path)
  if (!existsSync(copy)) copyFileSync(path, copy)
  log(
    'warn',
    `${path}: skipped unreadable lines ${skipped.slice(0, 10).join(', ')}; the file as it was is kept in ${copy}`,
  )
}

export function formatAccount(a: Account): string {
  return `${a.address}\t${a.hash}\t${a.created}\n`
}

/**
 * Replaces `path` with `text` durably: a temp file, fsync, rename, fsync of the directory (the
 * rename itself survives a power loss); throws (leaving `path` as it was) when it cannot.
 */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.new`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  syncDirectory(dirname(path))
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Where a damaged server-data file is kept: beside it, named by its modification time (one copy per version). */
function damagedCopy(path: string): string {
  return `${path}.damaged-${Math.floor(statSync(path).mtimeMs / 1000)}`
}

/**
 * A server-data file read defensively: undefined when missing; parsed when `parse` takes it;
 * otherwise it is moved aside (`<file>.damaged-<mtime>`), the log says so and what to do, and the
 * service goes on as if it were missing: a damaged file must not stop every login.
 */
export function readServerData<T>(
  path: string,
  parse: (text: string) => T | { reason: string },
  log: Logger,
): T | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const parsed = parse(text)
  if (typeof parsed === 'object' && parsed !== null && 'reason' in parsed) {
    const aside = damagedCopy(path)
    renameSync(path, aside)
    syncDirectory(dirname(path))
    log(
      'error',
      `${path} is damaged (${parsed.reason}): moved to ${aside}, going on without it; look into it and restore what it held`,
    )
    return undefined
  }
  return parsed as T
}

export class AccountStore {
  readonly path: string
  private readonly accounts: Map<string, Account>
  private expiring: Set<string>
  private fd: number
  private syncTimer: NodeJS.Timeout | undefined

  constructor(dir: string, log: Logger = () => {}) {
    this.path = join(dir, ACCOUNTS_FILE)
    const loaded = existsSync(this.path) ? parseAccounts(readFileSync(this.path, 'utf8')) : undefined
    this.accounts = loaded?.accounts ?? new Map()
    if (loaded) keepDamaged(this.path, loaded.skipped, log)
    const journal = join(dir, EXPIRING_FILE)
    const expiring = existsSync(journal) ? parseExpiring(readFileSync(journal, 'utf8')) : undefined
    this.expiring = new Set(expiring?.addresses ?? [])
    if (expiring) keepDamaged(journal, expiring.skipped, log)
    this.fd = openSync(this.path, 'a', 0o600)
    // A torn last line (no newline) must not swallow the next account.
    const size = fstatSync(this.fd).size
    if (
      size > 0 &&
      !readFileSync(this.path)
        .subarray(size - 1)
        .equals(Buffer.from('\n'))
    )
      writeSync(this.fd, '\n')
  }

  get size(): number {
    return this.accounts.size
  }

  get(address: string): Account | undefined {
    return this.accounts.get(address)
  }

  /** Adds an account (the caller checked it is new). Throws when the file cannot be written. */
  add(account: Account): void {
    writeSync(this.fd, formatAccount(account))
    this.accounts.set(account.address, account)
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = undefined
      fdatasync(this.fd, () => {})
    }, SYNC_MS)
  }

  /** Every account (a snapshot). */
  list(): Account[] {
    return [...this.accounts.values()]
  }

  /** Removed accounts whose mailboxes may still exist (see the top of this file). */
  expiringList(): string[] {
    return [...this.expiring]
  }

  isExpiring(address: string): boolean {
    return this.expiring.has(address)
  }

  /** Their mailboxes are gone: these addresses may be made again. Throws when the list cannot be written. */
  forgetExpired(addresses: Iterable<string>): void {
    const left = new Set(this.expiring)
    for (const a of addresses) left.delete(a)
    if (left.size === this.expiring.size) return
    this.writeExpiring(left)
  }

  private writeExpiring(set: Set<string>): void {
    writeFileAtomic(join(this.path, '..', EXPIRING_FILE), [...set].map((a) => `${a}\n`).join(''))
    this.expiring = set
  }

  /**
   * Removes these accounts from the file and the map, after adding them to the expiring list;
   * throws when it cannot (the accounts are then all still there; some may be on the list too,
   * which the next expiry sorts out).
   */
  remove(addresses: Iterable<string>): void {
    const gone = new Set(addresses)
    if (gone.size === 0) return
    this.writeExpiring(new Set([...this.expiring, ...gone]))
    let text = ''
    for (const a of this.accounts.values()) if (!gone.has(a.address)) text += formatAccount(a)
    writeFileAtomic(this.path, text)
    const old = this.fd
    this.fd = openSync(this.path, 'a', 0o600)
    closeSync(old)
    for (const address of gone) this.accounts.delete(address)
  }

  close(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer)
    closeSync(this.fd)
  }
}
