import { createHmac, randomBytes } from 'node:crypto'

/**
 * OpenSSH known_hosts handling (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain and hashed
 * (`|1|salt|hash`) host patterns, `[host]:port` for non-standard ports, wildcards and negation,
 * and the `@revoked` marker. Pure: the caller reads and appends the file.
 */

export interface KnownHostEntry {
  line: number
  marker: 'revoked' | 'cert-authority' | undefined
  /** Comma-separated patterns, or one hashed `|1|salt|hash` pattern. */
  patterns: string[]
  keyType: string
  /** Base64 of the public key blob, as in the file. */
  key: string
  /** The file the entry was read from, when the caller reads several. */
  file?: string
}

export function parseKnownHosts(text: string, file?: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const fields = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()
      if (m === '@revoked') marker = 'revoked'
      else if (m === '@cert-authority') marker = 'cert-authority'
      else return
    }
    const [hosts, keyType, key] = fields
    if (!hosts || !keyType || !key) return
    entries.push({ line: index + 1, marker, patterns: hosts.split(','), keyType, key, ...(file ? { file } : {}) })
  })
  return entries
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** OpenSSH PATTERNS: `*` any run, `?` one character, case-insensitive (known_hosts and ssh_config). */
export function globMatch(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${re}$`, 'i').test(name)
}

function hashedMatch(pattern: string, name: string): boolean {
  const [, magic, salt, hash] = pattern.split('|')
  if (magic !== '1' || !salt || !hash) return false
  const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
  return digest === hash
}

/** Does the entry's pattern list match the name (a negated match wins)? */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false
  for (const pattern of entry.patterns) {
    if (pattern.startsWith('|')) {
      if (hashedMatch(pattern, name)) matched = true
    } else if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), name)) return false
    } else if (globMatch(pattern, name)) {
      matched = true
    }
  }
  return matched
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return ''
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

export type HostKeyVerdict =
  | { status: 'known'; line: number; file?: string }
  | { status: 'unknown' }
  | { status: 'changed'; line: number; knownType: string; offeredType: string; file?: string }
  | { status: 'revoked'; line: number; file?: string }

/**
 * Checks a presented host key. A host with any key in the file is accepted only with one of
 * those keys: a different key, of the same type or of another type, is `changed` (OpenSSH's
 * "REMOTE HOST IDENTIFICATION HAS CHANGED"; a server that suddenly offers only another key type
 * is the same warning sign). `unknown` means the file holds no key at all for this host.
 * The reported line is that of a known key of the offered type if there is one, else the first.
 */
export function verifyHostKey(entries: KnownHostEntry[], names: string[], blob: Buffer): HostKeyVerdict {
  const presented = blob.toString('base64')
  const type = keyTypeOfBlob(blob)
  const relevant = entries.filter((e) => e.marker !== 'cert-authority' && names.some((n) => entryMatches(e, n)))
  const at = (e: KnownHostEntry) => ({ line: e.line, ...(e.file ? { file: e.file } : {}) })
  const revoked = relevant.find((e) => e.marker === 'revoked' && e.key === presented)
  if (revoked) return { status: 'revoked', ...at(revoked) }
  const plain = relevant.filter((e) => e.marker === undefined)
  const same = plain.find((e) => e.key === presented)
  if (same) return { status: 'known', ...at(same) }
  const conflicting = plain.find((e) => e.keyType === type) ?? plain[0]
  if (conflicting) return { status: 'changed', ...at(conflicting), knownType: conflicting.keyType, offeredType: type }
  return { status: 'unknown' }
}

/** Key types the file knows for the host, so the client can ask the server for one of those. */
export function knownKeyTypes(entries: KnownHostEntry[], names: string[]): string[] {
  const types = entries
    .filter((e) => e.marker === undefined && names.some((n) => entryMatches(e, n)))
    .map((e) => e.keyType)
  return [...new Set(types)]
}

/** A known_hosts line for a newly accepted key, hashed like `HashKnownHosts yes` unless told not to. */
export function formatKnownHostLine(name: string, blob: Buffer, hashed = true, salt = randomBytes(20)): string {
  const pattern = hashed
    ? `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
    : name
  return `${pattern} ${keyTypeOfBlob(blob)} ${blob.toString('base64')}`
}
