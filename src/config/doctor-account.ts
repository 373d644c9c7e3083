/**
 * `chatmail deploy host` makes an account for the doctor and keeps its password in the local
 * config (mode 0600). Only the [doctor] section is touched; the rest of the file stays as written.
 */
import { readFile } from 'node:fs/promises'
import { stringify } from 'smol-toml'
import { describeFsError } from '../lib/errors.js'
import { parseConfigText } from './load.js'
import { writePrivateFile } from './render.js'

const tomlString = (s: string): string => stringify({ x: s }).replace(/^x = /, '').trim()

/** Pure: the config text with the keys of one [section] set (their commented-out examples dropped). */
export function withSectionKeys(text: string, section: string, keys: [string, string][], by: string): string {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => new RegExp(`^\\s*\\[${section}\\]\\s*(#.*)?$`).test(l))
  const wanted = keys.map(
    ([k, value], i) => `${k} = ${tomlString(value)}${i === keys.length - 1 ? `  # made by ${by}` : ''}`,
  )
  if (start < 0) return `${text.replace(/\n*$/, '\n')}\n[${section}]\n${wanted.join('\n')}\n`
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l))
  if (end < 0) end = lines.length
  const names = keys.map(([k]) => k).join('|')
  const body = lines.slice(start + 1, end).filter((l) => !new RegExp(`^\\s*#?\\s*(${names})\\s*=`).test(l))
  return [...lines.slice(0, start + 1), ...wanted, ...body, ...lines.slice(end)].join('\n')
}

/** Pure: the config text with [doctor] user and password set. */
export const withDoctorAccount = (text: string, user: string, password: string): string =>
  withSectionKeys(
    text,
    'doctor',
    [
      ['user', user],
      ['password', password],
    ],
    'chatmail deploy host',
  )

async function saveConfigText(path: string, edit: (text: string) => string): Promise<void> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw describeFsError(err, path, 'config file')
  })
  const next = edit(text)
  parseConfigText(next, path) // never write a file that would not load
  await writePrivateFile(path, next, { force: true })
}

export const saveDoctorAccount = (path: string, user: string, password: string): Promise<void> =>
  saveConfigText(path, (t) => withDoctorAccount(t, user, password))

/** `chatmail backup` keeps the repository password it made in [backup] (mode 0600, like every secret). */
export const saveBackupPassword = (path: string, password: string): Promise<void> =>
  saveConfigText(path, (t) => withSectionKeys(t, 'backup', [['password', password]], 'chatmail backup'))
