/**
 * From flags, environment and chatmail.toml to DoctorOptions. Flags win; the config fills in
 * only when it is about the same domain (a DOMAIN argument for another server ignores it).
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { type LoadedConfig, loadConfig, loadConfigIfPresent } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { readSecretFile } from '../config/secret.js'
import { serverAddress } from '../config/values.js'
import { nameServerFlag } from '../dns/query.js'
import { zoneInputFor } from '../dns/zone-input.js'
import { cannotRun, describeFsError, usageError } from '../lib/errors.js'
import { parseIrohRelayUrl } from '../protocols/metadata-values.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { defaultServerConfig, describeServer } from '../server/services.js'
import type { DoctorOptions } from './model.js'

export const DEFAULT_CONFIG = 'chatmail.toml'
export const DEFAULT_TIMEOUT_SECONDS = 5
const MAX_TIMEOUT_SECONDS = 600

export interface DoctorFlags {
  domain?: string | undefined
  /** The config file; undefined: none (the prober's targets without `config`). */
  config: string | undefined
  imapHost?: string | undefined
  imapPort?: number | undefined
  user?: string | undefined
  password?: string | undefined
  /** --password-file: the file holding the password. */
  passwordFile?: string | undefined
  /** The password came as --password on the command line (where ps and shell history see it). */
  passwordOnCommandLine?: boolean | undefined
  turnSecretFile?: string | undefined
  ca?: string | undefined
  insecure: boolean
  relayUrl?: string | undefined
  turn?: string | undefined
  timeout?: string | undefined
  /** --nameserver HOST[:PORT]: the DNS server the dns group asks. */
  nameserver?: string | undefined
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
async function configFor(path: string | undefined): Promise<LoadedConfig | undefined> {
  if (path === undefined) return undefined
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
  const password = await readPassword(flags, warnings)
  const ca = await readCa(flags.ca)
  const options = doctorOptions(
    {
      domain,
      imapHost: flags.imapHost,
      imapPort: flags.imapPort,
      user: flags.user,
      password,
      turnSecret: secretFile?.secret,
      ca,
      insecure: flags.insecure,
      relayUrl,
      turnOverride,
      timeoutMs,
    },
    cfg,
  )
  const nameserver = nameServerFlag(flags.nameserver)
  if (nameserver) options.nameserver = nameserver
  if (options.insecure && options.password) {
    warnings.push(
      '--insecure: the IMAP password is sent even when the server certificate does not verify, so whoever is in the path can read it',
    )
  }
  return { options, warnings }
}

/** The password from --password-file, or --password / CHATMAIL_PASSWORD (warning when it was argv). */
async function readPassword(flags: DoctorFlags, warnings: string[]): Promise<string | undefined> {
  if (flags.passwordFile && flags.passwordOnCommandLine) {
    throw usageError('--password and --password-file both given', 'give the password once, preferably in the file')
  }
  if (flags.passwordFile) {
    const file = await readSecretFile(flags.passwordFile)
    if (file.warning) warnings.push(file.warning)
    return file.secret
  }
  if (flags.passwordOnCommandLine) {
    warnings.push(
      '--password shows the password to every user of this machine (ps) and keeps it in shell history: use CHATMAIL_PASSWORD or --password-file FILE',
    )
  }
  return flags.password
}

/** What a run names itself: the server, the account, trust and overrides. Unset values come from the config. */
export interface DoctorTarget {
  domain: string
  imapHost?: string | undefined
  imapPort?: number | undefined
  user?: string | undefined
  password?: string | undefined
  turnSecret?: string | undefined
  ca?: string | undefined
  insecure: boolean
  relayUrl?: string | undefined
  turnOverride?: { host: string; port: number } | undefined
  timeoutMs: number
}

/**
 * The one mapping from a config to DoctorOptions, used by `doctor` and by `deploy host`: what
 * the target names wins, the config (when it is about this domain) fills in the rest.
 */
export function doctorOptions(target: DoctorTarget, config?: Config): DoctorOptions {
  // On an IP-only server of ours the login is user@[IP] (postfix delivers to that form; accounts
  // accept user@IP too, the doctor's own account only the bracketed one). Others' logins stay as given.
  const given = target.user ?? config?.doctor.user
  const user = given !== undefined && config ? serverAddress(given, target.domain) : given
  const password = target.password ?? config?.doctor.password
  const turnSecret = target.turnSecret ?? config?.turn.secret
  const { ca, relayUrl, turnOverride } = target
  return {
    domain: target.domain,
    imapHost: target.imapHost ?? target.domain,
    imapPort: target.imapPort ?? config?.imap.port ?? DEFAULT_PORTS.imap,
    insecure: target.insecure,
    timeoutMs: target.timeoutMs,
    server: describeServer(config ?? defaultServerConfig(target.domain)),
    ...(user ? { user } : {}),
    ...(password ? { password } : {}),
    ...(turnSecret ? { turnSecret } : {}),
    ...(ca ? { ca } : {}),
    ...(relayUrl ? { relayUrl } : {}),
    ...(turnOverride ? { turnOverride } : {}),
    ...(config ? { turnTlsPort: config.turn.tlsPort } : {}),
    ...(config?.iroh.relayUrl ? { expectedRelayUrl: config.iroh.relayUrl } : {}),
    ...(config
      ? { expectedTurn: { host: config.turn.host, port: config.turn.port, tlsPort: config.turn.tlsPort } }
      : {}),
    ...(config ? { deployed: true } : {}),
    ...(config && !isIP(target.domain) ? { dnsZone: zoneInputFor(target.domain, config) } : {}),
  }
}
