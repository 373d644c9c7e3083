/**
 * chatmail.toml's [accounts]: who may sign up, the shape of new accounts, how fast one client may
 * create them, and when unused ones go. The schema, the defaults and the resolved values.
 */
import * as v from 'valibot'
import { parseDuration } from '../protocols/duration.js'
import { count, duration, size } from './fields.js'
import { days, daysSeconds } from './storage.js'

/**
 * PBKDF2-HMAC-SHA1 rounds of the hash of a password picked on a first login, at least (one hash
 * ≈ 2–3 ms of one core on the test machine; each of its logins pays one; /new's drawn passwords
 * get one round). Each hash keeps its own count, so a change applies to accounts created
 * afterwards and never locks anyone out.
 */
export const MIN_PASSWORD_HASH_ROUNDS = 10_000

export const REGISTRATIONS = ['open', 'invite', 'closed'] as const

export const AccountsSection = v.optional(
  v.strictObject(
    {
      registration: v.optional(
        v.picklist(REGISTRATIONS, `accounts.registration must be one of: ${REGISTRATIONS.join(', ')}`),
        'open',
      ),
      username_min_length: v.optional(count('accounts.username_min_length', 1, 64), 9),
      username_max_length: v.optional(count('accounts.username_max_length', 1, 64), 9),
      password_min_length: v.optional(count('accounts.password_min_length', 1, 1024), 9),
      password_hash_rounds: v.optional(
        count('accounts.password_hash_rounds', MIN_PASSWORD_HASH_ROUNDS, 10_000_000),
        MIN_PASSWORD_HASH_ROUNDS,
      ),
      min_free_disk: v.optional(size('accounts.min_free_disk'), '1G'),
      min_available_memory: v.optional(size('accounts.min_available_memory'), '200M'),
      max_creations_per_client: v.optional(count('accounts.max_creations_per_client', 0, 1_000_000), 20),
      creation_window: v.optional(duration('accounts.creation_window'), '1h'),
      delete_inactive_after: v.optional(days('accounts.delete_inactive_after'), '90d'),
    },
    'allowed keys in [accounts]: registration, username_min_length, username_max_length, password_min_length, password_hash_rounds, min_free_disk, min_available_memory, max_creations_per_client, creation_window, delete_inactive_after',
  ),
  {},
)

export interface AccountsConfig {
  registration: (typeof REGISTRATIONS)[number]
  usernameMinLength: number
  usernameMaxLength: number
  passwordMinLength: number
  /** PBKDF2 rounds of the hash a new account's password is stored as. */
  passwordHashRounds: number
  minFreeDisk: string
  minAvailableMemory: string
  maxCreationsPerClient: number
  creationWindowSeconds: number
  /** The expiry timer deletes accounts without a login for this long (seconds). */
  deleteInactiveAfterSeconds: number
}

/** [accounts] values when the file does not set them (chatmail relays' defaults). */
export const DEFAULT_ACCOUNTS: AccountsConfig = {
  registration: 'open',
  usernameMinLength: 9,
  usernameMaxLength: 9,
  passwordMinLength: 9,
  passwordHashRounds: MIN_PASSWORD_HASH_ROUNDS,
  minFreeDisk: '1G',
  minAvailableMemory: '200M',
  maxCreationsPerClient: 20,
  creationWindowSeconds: 3600,
  deleteInactiveAfterSeconds: 90 * 86400,
}

export function resolveAccounts(a: v.InferOutput<typeof AccountsSection>): AccountsConfig {
  if (a.username_min_length > a.username_max_length) {
    throw new Error(
      `accounts.username_min_length (${a.username_min_length}) must not be above accounts.username_max_length (${a.username_max_length})`,
    )
  }
  const window = parseDuration(String(a.creation_window))
  return {
    registration: a.registration,
    usernameMinLength: a.username_min_length,
    usernameMaxLength: a.username_max_length,
    passwordMinLength: a.password_min_length,
    passwordHashRounds: a.password_hash_rounds,
    minFreeDisk: a.min_free_disk,
    minAvailableMemory: a.min_available_memory,
    maxCreationsPerClient: a.max_creations_per_client,
    creationWindowSeconds: window.ok ? window.seconds : 3600,
    deleteInactiveAfterSeconds: daysSeconds(a.delete_inactive_after),
  }
}
