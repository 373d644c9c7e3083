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
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
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
    entries.push({ line: index + 1, marker, patterns: hosts.split(','), keyType, key })
  })
  return entries
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`
}

function globMatch(pattern: string, name: string): boolean {
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
  | { status: 'known'; line: number }
  | { status: 'unknown' }
  | { status: 'changed'; line: number; knownType: string }
  | { status: 'revoked'; line: number }

/**
 * Checks a presented host key. `changed` means the file holds a different key of the same type
 * for this host: the case OpenSSH refuses with "REMOTE HOST IDENTIFICATION HAS CHANGED".
 * A host known only with other key types is `unknown` for this type (the client should prefer the
 * known types; see `knownKeyTypes`).
 */
export function verifyHostKey(entries: KnownHostEntry[], names: string[], blob: Buffer): HostKeyVerdict {
  const presented = blob.toString('base64')
  const type = keyTypeOfBlob(blob)
  const relevant = entries.filter((e) => e.marker !== 'cert-authority' && names.some((n) => entryMatches(e, n)))
  const revoked = relevant.find((e) => e.marker === 'revoked' && e.key === presented)
  if (revoked) return { status: 'revoked', line: revoked.line }
  const plain = relevant.filter((e) => e.marker === undefined)
  const same = plain.find((e) => e.key === presented)
  if (same) return { status: 'known', line: same.line }
  const conflicting = plain.find((e) => e.keyType === type)
  if (conflicting) return { status: 'changed', line: conflicting.line, knownType: conflicting.keyType }
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
