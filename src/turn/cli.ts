/** The logic behind `chatmail turn-cred`: secret resolution, minting, rendering, verifying. */
import { loadConfigIfPresent } from '../config/load.js'
import { MAX_TURN_TTL_SECONDS } from '../config/schema.js'
import { resolveSecret, type SecretSource } from '../config/secret.js'
import { usageError } from '../lib/errors.js'
import { formatDuration, parseDuration } from '../protocols/duration.js'
import { formatTurnMetadata, isBareIpv6, parseTurnMetadata } from '../protocols/metadata-values.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'
import { mintTurnCredential, verifyTurnCredential } from '../protocols/turn-rest.js'
import { shellQuote } from '../ssh/quote.js'

export const FORMATS = ['line', 'json', 'ice', 'uclient'] as const
export type Format = (typeof FORMATS)[number]

export interface MintOptions {
  ttl: string
  user?: string | undefined
  host?: string | undefined
  port?: number | undefined
  tlsPort?: number | undefined
  format: Format
  nowMs: number
  /** --allow-long-ttl: the operator accepts a ttl over MAX_TURN_TTL_SECONDS. */
  allowLongTtl?: boolean | undefined
}

export async function mintForCli(
  source: SecretSource,
  o: MintOptions,
): Promise<{ text: string; summary: string; warnings: string[] }> {
  const ttl = parseDuration(o.ttl)
  if (!ttl.ok) throw usageError(`--ttl ${o.ttl} ${ttl.reason}`)
  if (ttl.seconds > MAX_TURN_TTL_SECONDS && !o.allowLongTtl) {
    throw usageError(
      `--ttl ${o.ttl} is longer than ${formatDuration(MAX_TURN_TTL_SECONDS)}: a leaked credential would stay valid that long`,
      'use a shorter --ttl, or pass --allow-long-ttl to accept it',
    )
  }
  if (o.user !== undefined && !/^[\x21-\x7e]+$/.test(o.user))
    throw usageError('--user must be printable ASCII without spaces')
  const loaded = await loadConfigIfPresent(source.configPath)
  const secret = await resolveSecret(source, loaded)
  const cfg = loaded?.config
  const host = o.host ?? cfg?.turn.host
  const port = o.port ?? cfg?.turn.port ?? DEFAULT_PORTS.turn
  const tlsPort = o.tlsPort ?? cfg?.turn.tlsPort ?? DEFAULT_PORTS.turnTls
  if (!host && o.format !== 'json') {
    throw usageError('no TURN host: pass --host, or run in a directory with chatmail.toml')
  }
  const cred = mintTurnCredential(secret.secret, { ttlSeconds: ttl.seconds, nowMs: o.nowMs, user: o.user })
  const warnings = secret.warning ? [secret.warning] : []
  const summary = `expires ${new Date(cred.expires * 1000).toISOString()} (in ${formatDuration(ttl.seconds)})`
  const h = host ?? ''
  const urlHost = isBareIpv6(h) ? `[${h}]` : h
  let text: string
  switch (o.format) {
    case 'line':
      if (o.user)
        throw usageError(
          '--user cannot be used with --format line',
          'Delta Chat needs the pure timestamp as the username',
        )
      try {
        text = formatTurnMetadata(h, port, cred.username, cred.password)
      } catch (err) {
        throw usageError((err as Error).message)
      }
      break
    case 'json':
      text = JSON.stringify({
        host: host ?? null,
        port,
        tlsPort,
        username: cred.username,
        password: cred.password,
        expires: cred.expires,
        expiresAt: new Date(cred.expires * 1000).toISOString(),
        ttl: ttl.seconds,
      })
      break
    case 'ice':
      text = JSON.stringify(
        {
          urls: [
            `turn:${urlHost}:${port}`,
            `turn:${urlHost}:${port}?transport=tcp`,
            `turns:${urlHost}:${tlsPort}?transport=tcp`,
          ],
          username: cred.username,
          credential: cred.password,
        },
        null,
        2,
      )
      break
    case 'uclient':
      text = [
        'turnutils_uclient',
        '-y',
        '-n',
        '3',
        '-m',
        '1',
        '-u',
        cred.username,
        '-w',
        cred.password,
        '-p',
        String(port),
        h,
      ]
        .map(shellQuote)
        .join(' ')
      break
  }
  return { text, summary, warnings }
}

export async function verifyForCli(
  source: SecretSource,
  usernameOrLine: string,
  password: string | undefined,
  nowMs: number,
): Promise<{ ok: boolean; message: string; warnings: string[]; json: Record<string, unknown> }> {
  let username = usernameOrLine
  let pass = password
  if (pass === undefined) {
    const parsed = parseTurnMetadata(usernameOrLine)
    if (!parsed.ok)
      throw usageError(`--verify: ${parsed.reason}`, 'give USERNAME PASSWORD, or one line host:port:username:password')
    username = parsed.value.username
    pass = parsed.value.password
  }
  const loaded = await loadConfigIfPresent(source.configPath)
  const secret = await resolveSecret(source, loaded)
  const res = verifyTurnCredential(secret.secret, username, pass, nowMs)
  const warnings = secret.warning ? [secret.warning] : []
  if (res.ok) {
    return {
      ok: true,
      message: `valid: expires ${new Date(res.expires * 1000).toISOString()} (in ${formatDuration(res.secondsLeft)})`,
      warnings,
      json: { valid: true, username, expires: res.expires, secondsLeft: res.secondsLeft },
    }
  }
  const label = { malformed: 'malformed', 'bad-signature': 'bad signature', expired: 'expired' }[res.reason]
  return {
    ok: false,
    message: `invalid (${label}): ${res.detail}`,
    warnings,
    json: {
      valid: false,
      username,
      reason: res.reason,
      detail: res.detail,
      ...(res.expires ? { expires: res.expires } : {}),
    },
  }
}
