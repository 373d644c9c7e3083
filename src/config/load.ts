import { readFile, stat } from 'node:fs/promises'
import { parse as parseToml, TomlError } from 'smol-toml'
import * as v from 'valibot'
import { ChatmailError, describeFsError, ExitCode } from '../lib/errors.js'
import { type Config, ConfigSchema, resolveConfig } from './schema.js'

export class ConfigError extends ChatmailError {
  constructor(file: string, message: string, hint?: string) {
    super(`${file}: ${message}`, ExitCode.cannotRun, hint)
    this.name = 'ConfigError'
  }
}

/** The config file is not there (every other problem with it is a ConfigError or an fs error). */
export class ConfigMissingError extends ChatmailError {
  constructor(path: string) {
    super(
      `config file ${path} does not exist`,
      ExitCode.cannotRun,
      'run `chatmail init DOMAIN` first, or pass --config FILE',
    )
    this.name = 'ConfigMissingError'
  }
}

export interface LoadedConfig {
  path: string
  config: Config
  /** Set when the file can be read by others than its owner. */
  looseMode?: number
}

/** Keys allowed at each level of the schema, to name them in errors. */
function allowedKeys(path: string[]): string[] {
  let schema: unknown = ConfigSchema
  for (const key of path) {
    let s = schema as { entries?: Record<string, unknown>; wrapped?: unknown }
    if (s.wrapped) s = s.wrapped as typeof s
    schema = s.entries?.[key]
  }
  let s = schema as { entries?: Record<string, unknown>; wrapped?: { entries?: Record<string, unknown> } }
  if (s?.wrapped) s = s.wrapped
  return Object.keys(s?.entries ?? {})
}

/** Keys whose values are secrets: an error about them never shows the value. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['turn.secret', 'doctor.password', 'backup.password'])

/** A TOML value as an error shows it; tables and lists by kind (a TOML table has no prototype to print). */
function describeValue(input: unknown): string {
  if (typeof input === 'string') return JSON.stringify(input)
  if (Array.isArray(input)) return 'a list'
  if (input instanceof Date) return input.toISOString()
  if (typeof input === 'object' && input !== null) return 'a table'
  return String(input)
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  // A quoted TOML key may hold anything: shown escaped, like values.
  const keys = (issue.path ?? []).map((p) => JSON.stringify(String(p.key)).slice(1, -1))
  const dotted = keys.join('.')
  const parent = keys.slice(0, -1)
  const section = parent.length ? `[${parent.join('.')}]` : 'the top level'
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    return `unknown key "${dotted}"; allowed in ${section}: ${allowedKeys(parent).join(', ')}`
  }
  if (issue.input === undefined && keys.length > 0) {
    return `missing key "${dotted}"`
  }
  if (issue.type === 'strict_object' && keys.length > 0) {
    return `"${dotted}" must be a table ([${dotted}]) with keys: ${allowedKeys(keys).join(', ')}`
  }
  // Secrets (turn.secret, doctor.password, backup.password) are never echoed back, whatever their type.
  const shown = SECRET_KEYS.has(dotted) ? '' : ` (got ${describeValue(issue.input)})`
  return `${issue.message}${shown}`
}

export function parseConfigText(text: string, file: string): Config {
  let data: unknown
  try {
    data = parseToml(text)
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0] ?? 'invalid TOML'
      throw new ConfigError(
        file,
        `line ${err.line}, column ${err.column}: ${first.replace(/^Invalid TOML document: /, '')}`,
      )
    }
    throw new ConfigError(file, `not valid TOML: ${(err as Error).message}`)
  }
  const result = v.safeParse(ConfigSchema, data)
  if (!result.success) {
    const first = result.issues[0] as v.BaseIssue<unknown>
    const more = result.issues.length > 1 ? ` (and ${result.issues.length - 1} more)` : ''
    throw new ConfigError(file, `${describeIssue(first)}${more}`)
  }
  try {
    return resolveConfig(result.output)
  } catch (err) {
    throw new ConfigError(file, (err as Error).message)
  }
}

export async function loadConfig(path: string): Promise<LoadedConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigMissingError(path)
    throw describeFsError(err, path, 'config file')
  }
  const config = parseConfigText(text, path)
  const st = await stat(path)
  const looseMode = (st.mode & 0o077) !== 0 ? st.mode & 0o777 : undefined
  return { path, config, ...(looseMode !== undefined ? { looseMode } : {}) }
}

/** Load the config if the file exists; undefined when it does not (other errors still throw). */
export async function loadConfigIfPresent(path: string): Promise<LoadedConfig | undefined> {
  try {
    return await loadConfig(path)
  } catch (err) {
    if (err instanceof ConfigMissingError) return undefined
    throw err
  }
}
