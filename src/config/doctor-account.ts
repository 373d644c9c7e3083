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

/** Pure: the config text with [doctor] user and password set. */
export function withDoctorAccount(text: string, user: string, password: string): string {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => /^\s*\[doctor\]\s*(#.*)?$/.test(l))
  const wanted = [`user = ${tomlString(user)}`, `password = ${tomlString(password)}  # made by chatmail deploy host`]
  if (start < 0) return `${text.replace(/\n*$/, '\n')}\n[doctor]\n${wanted.join('\n')}\n`
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l))
  if (end < 0) end = lines.length
  const body = lines.slice(start + 1, end).filter((l) => !/^\s*#?\s*(user|password)\s*=/.test(l))
  return [...lines.slice(0, start + 1), ...wanted, ...body, ...lines.slice(end)].join('\n')
}

export async function saveDoctorAccount(path: string, user: string, password: string): Promise<void> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw describeFsError(err, path, 'config file')
  })
  const next = withDoctorAccount(text, user, password)
  parseConfigText(next, path) // never write a file that would not load
  await writePrivateFile(path, next, { force: true })
}
