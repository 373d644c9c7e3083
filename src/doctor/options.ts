/**
 * From flags, environment and chatmail.toml to DoctorOptions. Flags win; the config fills in
 * only when it is about the same domain (a DOMAIN argument for another server ignores it).
 */
import { readFile } from 'node:fs/promises'
import { type LoadedConfig, loadConfig, loadConfigIfPresent } from '../config/load.js'
import { readSecretFile } from '../config/secret.js'
import { cannotRun, describeFsError, usageError } from '../lib/errors.js'
import { parseIrohRelayUrl } from '../protocols/metadata-values.js'
import type { DoctorOptions } from './model.js'

export const DEFAULT_CONFIG = 'chatmail.toml'
export const DEFAULT_IMAP_PORT = 993
export const DEFAULT_TIMEOUT_SECONDS = 5
const MAX_TIMEOUT_SECONDS = 600

export interface DoctorFlags {
  domain?: string | undefined
  config: string
  imapHost?: string | undefined
  imapPort?: number | undefined
  user?: string | undefined
  password?: string | undefined
  turnSecretFile?: string | undefined
  ca?: string | undefined
  insecure: boolean
  relayUrl?: string | undefined
  turn?: string | undefined
  timeout?: string | undefined
}

export interface ResolvedDoctor {
  options: DoctorOptions
  warnings: string[]
}

/** `host:port` or `[v6]:port`. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value)
  const port = Number(m?.[2])
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw usageError(`${flag} ${value} is not HOST:PORT`, 'e.g. turn.example.org:3478, or [2001:db8::1]:3478')
  }
  return { host: m[1] as string, port }
}

export function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_SECONDS * 1000
  const seconds = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || seconds <= 0 || seconds > MAX_TIMEOUT_SECONDS) {
    throw usageError(`--timeout ${value} is not a number of seconds from 0.1 to ${MAX_TIMEOUT_SECONDS}`)
  }
  return Math.round(seconds * 1000)
}

function parseRelayUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const parsed = parseIrohRelayUrl(value)
  if (!parsed.ok) throw usageError(`--relay-url ${parsed.reason}`, 'e.g. https://chat.example.org')
  return parsed.value.href
}

async function readCa(path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw describeFsError(err, path, 'CA file')
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw cannotRun(`CA file ${path} holds no PEM certificate`)
  return text
}

/** The explicit --config must exist; the default one is optional. */
async function configFor(path: string): Promise<LoadedConfig | undefined> {
  return path === DEFAULT_CONFIG ? loadConfigIfPresent(path) : loadConfig(path)
}

export async function resolveDoctorOptions(flags: DoctorFlags): Promise<ResolvedDoctor> {
  const timeoutMs = parseTimeout(flags.timeout)
  const relayUrl = parseRelayUrl(flags.relayUrl)
  const turnOverride = flags.turn ? parseHostPort(flags.turn, '--turn') : undefined
  const loaded = await configFor(flags.config)
  const domain = flags.domain ?? loaded?.config.domain
  if (!domain) {
    throw cannotRun('no domain to check', 'pass DOMAIN, or run where chatmail.toml is (or pass --config FILE)')
  }
  const cfg = loaded && loaded.config.domain === domain ? loaded.config : undefined
  const warnings: string[] = []
  if (loaded && !cfg) warnings.push(`${loaded.path} is for ${loaded.config.domain}, not ${domain}: not using it`)
  const secretFile = flags.turnSecretFile ? await readSecretFile(flags.turnSecretFile) : undefined
  if (secretFile?.warning) warnings.push(secretFile.warning)
  if (cfg && loaded?.looseMode !== undefined)
    warnings.push(`${loaded.path} has mode ${loaded.looseMode.toString(8)}; run chmod 600 ${loaded.path}`)
  const user = flags.user ?? cfg?.doctor.user
  const password = flags.password ?? cfg?.doctor.password
  const turnSecret = secretFile?.secret ?? cfg?.turn.secret
  const ca = await readCa(flags.ca)
  const options: DoctorOptions = {
    domain,
    imapHost: flags.imapHost ?? domain,
    imapPort: flags.imapPort ?? cfg?.imap.port ?? DEFAULT_IMAP_PORT,
    insecure: flags.insecure,
    timeoutMs,
    ...(user ? { user } : {}),
    ...(password ? { password } : {}),
    ...(turnSecret ? { turnSecret } : {}),
    ...(ca ? { ca } : {}),
    ...(relayUrl ? { relayUrl } : {}),
    ...(turnOverride ? { turnOverride } : {}),
    ...(cfg ? { turnTlsPort: cfg.turn.tlsPort } : {}),
    ...(cfg?.iroh.relayUrl ? { expectedRelayUrl: cfg.iroh.relayUrl } : {}),
    ...(cfg ? { expectedTurn: { host: cfg.turn.host, port: cfg.turn.port, tlsPort: cfg.turn.tlsPort } } : {}),
  }
  return { options, warnings }
}
