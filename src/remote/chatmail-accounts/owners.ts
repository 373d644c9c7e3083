/**
 * Addresses that belong to another passdb: the passwd-files dovecot asks before this service (the
 * doctor's account, an operator's accounts in /etc/dovecot/users). Dovecot goes on to the next
 * passdb after any failure, a wrong password included, so a wrong password for such an address
 * reaches this service as the login of an unknown address; were it created here, with the
 * attacker's password, that login would open the owner's mailbox. So an address in any of these
 * files is never created here, never answered as an account of ours, and is a recipient with a
 * mailbox (dovecot's passwd-file userdb delivers to it).
 *
 * Each file is read again when its inode, size or modification time changed. A file that cannot be
 * read (other than missing: no such accounts) makes `owned` answer `unknown`: no creation then.
 */
import { readFileSync, statSync } from 'node:fs'
import { canonical } from '../../protocols/address.js'

export type Ownership = 'ours' | 'theirs' | 'unknown'

interface Snapshot {
  key: string
  addresses: Map<string, boolean>
}

/**
 * The canonical addresses of a passwd-file's lines on our domain (`user:password:...`; # comments),
 * each with whether dovecot's passwd-file userdb finds it: only a line with uid and gid fields
 * (empty ones will do, `user:{SCHEME}hash::`), else dovecot keeps it as a password alone and a
 * login or a delivery to it finds no user. Every line owns its address either way.
 */
export function passwdFileAddresses(text: string, domain: string): Map<string, boolean> {
  const out = new Map<string, boolean>()
  for (const line of text.split('\n')) {
    const fields = line.split(':')
    const user = (fields[0] ?? '').trim()
    if (user === '' || user.startsWith('#')) continue
    const parsed = canonical(user, domain)
    if (parsed) out.set(parsed.address, (out.get(parsed.address) ?? false) || fields.length >= 4)
  }
  return out
}

export class PasswdOwners {
  private readonly snapshots = new Map<string, Snapshot>()
  /** Files whose failure was logged, until they can be read again (one line, not one a login). */
  private readonly reported = new Set<string>()

  constructor(
    private readonly files: readonly string[],
    private readonly domain: () => string,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  /** Whether another passdb's `address` has a mailbox dovecot delivers to (its line has userdb fields). */
  hasMailbox(address: string): boolean {
    for (const path of this.files) if (this.read(path)?.get(address)) return true
    return false
  }

  /** Whether `address` (canonical) is free for this service, another passdb's, or cannot be told now. */
  owner(address: string): Ownership {
    let unknown = false
    for (const path of this.files) {
      const addresses = this.read(path)
      if (addresses === undefined) unknown = true
      else if (addresses.has(address)) return 'theirs'
    }
    return unknown ? 'unknown' : 'ours'
  }

  /** The file's addresses, or undefined when it cannot be read. */
  private read(path: string): Map<string, boolean> | undefined {
    const domain = this.domain()
    let key: string
    try {
      const st = statSync(path)
      key = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${domain}`
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
      return this.failed(path, err)
    }
    const cached = this.snapshots.get(path)
    if (cached?.key === key) return cached.addresses
    try {
      const addresses = passwdFileAddresses(readFileSync(path, 'utf8'), domain)
      this.snapshots.set(path, { key, addresses })
      this.reported.delete(path)
      return addresses
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
      return this.failed(path, err)
    }
  }

  private failed(path: string, err: unknown): undefined {
    this.snapshots.delete(path)
    if (this.reported.has(path)) return undefined
    this.reported.add(path)
    this.onError(`cannot read ${path} (no account is created while it is unreadable): ${(err as Error).message}`)
    return undefined
  }
}
