/** Where chatmail-accounts lives on the host (the deploy installs it there; `chatmail invite` runs it). */
export const ACCOUNTS = {
  program: '/usr/local/lib/chatmail/chatmail-accounts.js',
  config: '/etc/chatmail/accounts.conf',
  dataDir: '/var/lib/chatmail-accounts',
  runDir: '/run/chatmail-accounts',
  dictSocket: '/run/chatmail-accounts/dict.socket',
  socketmapSocket: '/run/chatmail-accounts/socketmap.socket',
  httpSocket: '/run/chatmail-accounts/http.socket',
  controlSocket: '/run/chatmail-accounts/control.socket',
  lastloginSocket: '/run/chatmail-accounts/lastlogin.socket',
  dovecotDict: '/etc/dovecot/accounts-dict.conf.ext',
} as const

export interface Invite {
  token: string
  uses: number
  /** Unix seconds. */
  expires: number
  registration: string
}

/** The service's answer to `chatmail-accounts.js invite`, checked. */
export function parseInvite(stdout: string): Invite | undefined {
  try {
    const j = JSON.parse(stdout) as Record<string, unknown>
    if (j.ok !== true || typeof j.token !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(j.token)) return undefined
    if (typeof j.uses !== 'number' || typeof j.expires !== 'number') return undefined
    return { token: j.token, uses: j.uses, expires: j.expires, registration: String(j.registration) }
  } catch {
    return undefined
  }
}
