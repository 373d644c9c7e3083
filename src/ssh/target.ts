import { ChatmailError } from '../lib/errors.js'

export interface SshTarget {
  host: string
  port?: number
  user?: string
}

/** Parses `user@host[:port]` (an IPv6 address in brackets: `root@[2001:db8::1]:2222`). */
export function parseDestination(dest: string): SshTarget {
  const at = dest.lastIndexOf('@')
  const user = at >= 0 ? dest.slice(0, at) : undefined
  const rest = at >= 0 ? dest.slice(at + 1) : dest
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]+)(?::(\d+))?$/.exec(rest)
  if (!m?.[1] || (user !== undefined && user === '')) {
    throw new ChatmailError(`invalid destination '${dest}'`, 2, 'use user@host or user@host:port')
  }
  const port = m[2] ? Number(m[2]) : undefined
  if (port !== undefined && (port < 1 || port > 65535)) throw new ChatmailError(`invalid port in '${dest}'`, 2)
  return { host: m[1], port, user }
}
