/** Where the TURN secret comes from: a file, an environment variable, or the config. Never argv. */
import { readFile, stat } from 'node:fs/promises'
import { ChatmailError, describeFsError, ExitCode } from '../lib/errors.js'
import type { LoadedConfig } from './load.js'

export interface SecretSource {
  secretFile?: string | undefined
  secretEnv?: string | undefined
  configPath: string
}

export interface ResolvedSecret {
  secret: string
  from: string
  warning?: string
}

export async function readSecretFile(path: string): Promise<ResolvedSecret> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw describeFsError(err, path, 'secret file')
  }
  const secret = text.replace(/\r?\n$/, '')
  if (secret === '') throw new ChatmailError(`secret file ${path} is empty`, ExitCode.cannotRun)
  const mode = (await stat(path)).mode & 0o777
  const warning = mode & 0o077 ? `secret file ${path} has mode ${mode.toString(8)}; run chmod 600 ${path}` : undefined
  return { secret, from: `file ${path}`, ...(warning ? { warning } : {}) }
}

/** The secret from a file, an env var, or `loaded` (the config, undefined when there is none). */
export async function resolveSecret(src: SecretSource, loaded: LoadedConfig | undefined): Promise<ResolvedSecret> {
  if (src.secretFile) return readSecretFile(src.secretFile)
  if (src.secretEnv) {
    const value = process.env[src.secretEnv]
    if (value === undefined || value === '') {
      throw new ChatmailError(
        `environment variable ${src.secretEnv} is not set or empty`,
        ExitCode.cannotRun,
        'export it, or use --secret-file',
      )
    }
    return { secret: value, from: `environment variable ${src.secretEnv}` }
  }
  const cfg = loaded
  if (!cfg) {
    throw new ChatmailError(
      `no TURN secret: ${src.configPath} does not exist`,
      ExitCode.cannotRun,
      'pass --secret-file FILE or --secret-env VAR, or run `chatmail init DOMAIN`',
    )
  }
  const warning =
    cfg.looseMode !== undefined
      ? `${cfg.path} has mode ${cfg.looseMode.toString(8)}; run chmod 600 ${cfg.path}`
      : undefined
  return { secret: cfg.config.turn.secret, from: cfg.path, ...(warning ? { warning } : {}) }
}
