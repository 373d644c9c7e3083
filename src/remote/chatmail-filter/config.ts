/**
 * chatmail-filter's config file (templates/chatmail-filter/chatmail-filter.conf documents every
 * key). Pure.
 */
import { parseCount, parseFlag, parseMode, parsePath, parseSize, readKeyValues } from '../lib/kv-config.js'

export interface FilterConfig {
  socket: string
  socketMode: number
  maxMessageSize: number
  sendPerMinute: number
  sendBurst: number
  verbose: boolean
}

export type ConfigResult = { ok: true; config: FilterConfig } | { ok: false; errors: string[] }

const KNOWN_KEYS = [
  'socket',
  'socket_mode',
  'max_message_size',
  'max_user_send_per_minute',
  'max_user_send_burst',
  'verbose',
] as const

export function parseConfig(text: string): ConfigResult {
  const errors: string[] = []
  const v = readKeyValues(text, KNOWN_KEYS, errors)
  const config: FilterConfig = {
    socket: parsePath('socket', v.get('socket'), errors),
    socketMode: parseMode('socket_mode', v.get('socket_mode'), 0o660, errors),
    maxMessageSize: parseSize('max_message_size', v.get('max_message_size'), 31_457_280, errors),
    sendPerMinute: parseCount('max_user_send_per_minute', v.get('max_user_send_per_minute'), 60, errors, 1, 1_000_000),
    sendBurst: parseCount('max_user_send_burst', v.get('max_user_send_burst'), 10, errors, 1, 1_000_000),
    verbose: parseFlag('verbose', v.get('verbose'), errors),
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config }
}
