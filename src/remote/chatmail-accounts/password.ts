/**
 * Password hashes in dovecot's PBKDF2 scheme, which dovecot 2.3 and 2.4 both verify natively:
 * `{PBKDF2}$1$<salt>$<rounds>$<hex of the 20-byte PBKDF2-HMAC-SHA1 key>`, the salt used as its
 * ASCII text. Hashing runs in libuv's thread pool (node:crypto), never on the event loop.
 */
import { pbkdf2, pbkdf2Sync, randomInt, timingSafeEqual } from 'node:crypto'

export const SCHEME = 'PBKDF2'
const KEY_BYTES = 20
const SALT_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const SALT_LENGTH = 16
const FORMAT = /^\{PBKDF2\}\$1\$([^$]+)\$(\d+)\$([0-9a-f]{40})$/

export function newSalt(): string {
  let salt = ''
  for (let i = 0; i < SALT_LENGTH; i++) salt += SALT_CHARS[randomInt(SALT_CHARS.length)]
  return salt
}

function format(salt: string, rounds: number, key: Buffer): string {
  return `{${SCHEME}}$1$${salt}$${rounds}$${key.toString('hex')}`
}

export function hashPassword(password: string, rounds: number, salt = newSalt()): Promise<string> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, rounds, KEY_BYTES, 'sha1', (err, key) =>
      err ? reject(err) : resolve(format(salt, rounds, key)),
    )
  })
}

/** True when `password` matches `hash` (a {PBKDF2} string); false for anything else. In libuv's thread pool. */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = FORMAT.exec(hash)
  if (!m) return Promise.resolve(false)
  return new Promise((resolve, reject) => {
    pbkdf2(password, m[1] as string, Number(m[2]), KEY_BYTES, 'sha1', (err, key) =>
      err ? reject(err) : resolve(timingSafeEqual(key, Buffer.from(m[3] as string, 'hex'))),
    )
  })
}

/** True when `password` matches `hash` (a {PBKDF2} string); false for anything else. Synchronous: tests and tools. */
export function verifyPasswordSync(password: string, hash: string): boolean {
  const m = FORMAT.exec(hash)
  if (!m) return false
  const key = pbkdf2Sync(password, m[1] as string, Number(m[2]), KEY_BYTES, 'sha1')
  return timingSafeEqual(key, Buffer.from(m[3] as string, 'hex'))
}

export function isHash(text: string): boolean {
  return FORMAT.test(text)
}
