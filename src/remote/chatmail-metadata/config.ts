/**
 * The service's config file: `key = value` lines, `#` starts a comment line, blank lines ignored.
 * Documented in templates/chatmail-metadata/chatmail-metadata.conf. Parsing is pure; errors name the line.
 */
import { formatDuration, parseDuration } from '../../protocols/duration.js'
import { isBareIpv6, parseIrohRelayUrl } from '../../protocols/metadata-values.js'
import { DEFAULT_PORTS } from '../../protocols/ports.js'
import { parseCount, parseFlag, parseMode, parsePath, parsePort as port, readKeyValues } from '../lib/kv-config.js'
import type { Answers } from './answers.js'

export interface ServiceConfig extends Answers {
  socket: string
  socketMode: number
  domain: string
  secretFile: string
  verbose: boolean
}

export type ConfigResult = { ok: true; config: ServiceConfig; warnings: string[] } | { ok: false; errors: string[] }

const KNOWN_KEYS = [
  'socket',
  'socket_mode',
  'domain',
  'turn_host',
  'turn_port',
  'turns_port',
  'turn_ttl',
  'iroh_relay_url',
  'secret_file',
  'max_smtp_recipients',
  'verbose',
] as const
type Key = (typeof KNOWN_KEYS)[number]

/** Below this, Delta Chat (which refreshes 12 h before expiry) would ask again on every connect. */
const CORE_REFRESH_MARGIN_SECONDS = 12 * 3600

function required(values: Map<Key, string>, key: Key, errors: string[]): string {
  const v = values.get(key)
  if (!v) errors.push(`${key} is required`)
  return v ?? ''
}

function hostName(text: string, errors: string[]): string {
  if (text === '' || /\s/.test(text)) errors.push(`turn_host "${text}" is not a host name`)
  else if (isBareIpv6(text) || text.startsWith('[')) {
    errors.push(`turn_host ${text} is an IPv6 address, which Delta Chat cannot parse; use a DNS name or IPv4`)
  }
  return text
}

function ttl(text: string, errors: string[], warnings: string[]): number {
  const r = parseDuration(text)
  if (!r.ok) {
    errors.push(`turn_ttl "${text}" ${r.reason}`)
    return 0
  }
  if (r.seconds <= CORE_REFRESH_MARGIN_SECONDS) {
    warnings.push(`turn_ttl ${formatDuration(r.seconds)} is not above 12h: Delta Chat will fetch new credentials often`)
  }
  return r.seconds
}

function relayUrl(text: string | undefined, errors: string[]): string | undefined {
  if (!text) return undefined
  const r = parseIrohRelayUrl(text)
  if (!r.ok) errors.push(`iroh_relay_url: ${r.reason}`)
  return text
}

function optionalPort(name: string, text: string | undefined, fallback: number, errors: string[]): number | undefined {
  if (text === undefined || text === '') return fallback
  if (text === 'off') return undefined
  return port(name, text, errors)
}

export function parseConfig(text: string): ConfigResult {
  const errors: string[] = []
  const warnings: string[] = []
  const v = readKeyValues(text, KNOWN_KEYS, errors)
  const domain = required(v, 'domain', errors)
  const config: ServiceConfig = {
    socket: parsePath('socket', v.get('socket'), errors),
    socketMode: parseMode('socket_mode', v.get('socket_mode'), 0o660, errors),
    domain,
    turnHost: hostName(v.get('turn_host') || domain, errors),
    turnPort: port('turn_port', v.get('turn_port') || String(DEFAULT_PORTS.turn), errors),
    turnsPort: optionalPort('turns_port', v.get('turns_port'), DEFAULT_PORTS.turnTls, errors),
    ttlSeconds: ttl(v.get('turn_ttl') || '5d', errors, warnings),
    irohRelayUrl: relayUrl(v.get('iroh_relay_url'), errors),
    secretFile: parsePath('secret_file', v.get('secret_file'), errors),
    maxSmtpRecipients: v.get('max_smtp_recipients')
      ? parseCount('max_smtp_recipients', v.get('max_smtp_recipients'), 0, errors, 1, 1_000_000)
      : undefined,
    verbose: parseFlag('verbose', v.get('verbose'), errors),
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config, warnings }
}

/** One line for the log: everything but secrets (the config holds none, only the secret's path). */
export function describeConfig(c: ServiceConfig): string {
  const turns = c.turnsPort === undefined ? 'off' : `${c.turnHost}:${c.turnsPort}`
  return `domain=${c.domain} turn=${c.turnHost}:${c.turnPort} turns=${turns} ttl=${formatDuration(c.ttlSeconds)} irohrelay=${c.irohRelayUrl ?? 'off'} maxsmtprecipients=${c.maxSmtpRecipients ?? 'off'} secret_file=${c.secretFile}`
}
