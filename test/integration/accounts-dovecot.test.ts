/**
 * chatmail-accounts as a real dovecot's passdb and userdb (dict over its unix socket): accounts are
 * created on first login when the rules allow, a wrong password is refused, refusals carry their
 * reason to the client, accounts survive a restart of the service.
 */

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { qrSvg } from '../../src/signup/links.js'
import {
  ACCOUNTS_PROGRAM,
  type AccountsService,
  type AccountsWithDovecot,
  postNew as postNewAt,
  saslAuth as saslAuthAt,
  startAccountsWithDovecot,
} from '../helpers/accounts.js'
import { type Dovecot, logWith } from '../helpers/dovecot.js'
import { imapLogin, imapsClient } from '../helpers/imap-login.js'

const DOMAIN = 'chat.example.org'

/** POST /new as nginx passes it: its $host as Host, as our template says. */
const postNew = (socketPath: string, query = '', headers: Record<string, string> = {}) =>
  postNewAt(socketPath, query, { host: DOMAIN, ...headers })

function invite(configPath: string, uses: number): Promise<Record<string, string | number>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [ACCOUNTS_PROGRAM, 'invite', configPath, String(uses), '3600'], (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(JSON.parse(stdout)),
    )
  })
}

describe('chatmail-accounts with dovecot', () => {
  let stack: AccountsWithDovecot
  let svc: AccountsService
  let dovecot: Dovecot
  let dataDir: string

  beforeAll(async () => {
    stack = await startAccountsWithDovecot(DOMAIN)
    ;({ svc, dovecot, dataDir } = stack)
  }, 60_000)

  afterAll(async () => {
    await stack?.stop()
  })

  it('creates an account on the first login, then accepts only its password', async () => {
    expect(await imapLogin(dovecot.imapPort, `abcdefghi@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    expect(await imapLogin(dovecot.imapPort, `abcdefghi@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    expect(await imapLogin(dovecot.imapPort, `abcdefghi@${DOMAIN}`, 'password-2')).toMatch(/^a NO/)
    expect(await imapLogin(dovecot.imapPort, `ABCDEFGHI@${DOMAIN.toUpperCase()}`, 'password-1')).toMatch(/^a OK/)
    const line = readFileSync(`${dataDir}/accounts`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('abcdefghi@'))
    expect(line).toMatch(/^abcdefghi@chat\.example\.org\t\{PBKDF2\}\$1\$[A-Za-z0-9]{16}\$1000\$[0-9a-f]{40}\t\d+$/)
    expect(readFileSync(`${dataDir}/accounts`, 'utf8')).not.toContain('password-1')
  })

  it('refuses to create what breaks the rules, with the reason', async () => {
    expect(await imapLogin(dovecot.imapPort, `shortpw01@${DOMAIN}`, 'short')).toMatch(
      /^a NO .*password must be at least 9 characters/,
    )
    expect(await imapLogin(dovecot.imapPort, `toolongname@${DOMAIN}`, 'password-1')).toMatch(
      /^a NO .*must be 9 characters/,
    )
    expect(await imapLogin(dovecot.imapPort, 'abcdefghi@other.example', 'password-1')).toMatch(/^a NO/)
    expect(await imapLogin(dovecot.imapPort, `shortpw01@${DOMAIN}`, 'long-enough-now')).toMatch(/^a OK/)
  })

  it('keeps accounts across a restart of the service', async () => {
    await svc.restart()
    expect(svc.logs()).toMatch(/\b2 accounts/)
    expect(await imapLogin(dovecot.imapPort, `abcdefghi@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    expect(await imapLogin(dovecot.imapPort, `abcdefghi@${DOMAIN}`, 'wrong-password')).toMatch(/^a NO/)
  })

  it('registration closed: existing accounts log in, new ones are refused with the reason', async () => {
    svc.writeConfig({ registration: 'closed' })
    await svc.reload()
    expect(await imapLogin(dovecot.imapPort, `closed001@${DOMAIN}`, 'password-1')).toMatch(
      /^a NO .*registration is closed/,
    )
    expect(await imapLogin(dovecot.imapPort, `abcdefghi@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    svc.writeConfig({ registration: 'open' })
    await svc.reload()
  })

  it('refuses creation when the host is short of disk, with the reason', async () => {
    svc.writeConfig({ min_free_disk: '1000000T' })
    await svc.reload()
    expect(await imapLogin(dovecot.imapPort, `nodisk001@${DOMAIN}`, 'password-1')).toMatch(
      /^a NO .*short of disk space/,
    )
    svc.writeConfig({ min_free_disk: '1M' })
    await svc.reload()
  })

  it('rate-limits creations per client address', async () => {
    svc.writeConfig({ max_creations_per_client: '2', creation_window: '1h' })
    await svc.reload()
    const results = []
    for (const name of ['ratelim01', 'ratelim02', 'ratelim03']) {
      results.push(await imapLogin(dovecot.imapPort, `${name}@${DOMAIN}`, 'password-1'))
    }
    // A reload with a new limit starts a new count.
    expect(results[0]).toMatch(/^a OK/)
    expect(results[1]).toMatch(/^a OK/)
    expect(results[2]).toMatch(/^a NO .*too many new accounts/)
    svc.writeConfig({ max_creations_per_client: '100000' })
    await svc.reload()
  })

  it('POST /new returns a fresh account that logs in at once', async () => {
    const r = await postNew(svc.httpSocket)
    expect(r.status).toBe(200)
    expect(r.body.email).toMatch(/^[a-z0-9]{9}@chat\.example\.org$/)
    expect(r.body.password?.length).toBeGreaterThanOrEqual(22)
    expect(r.body.dclogin_url).toBeUndefined()
    expect(await imapLogin(dovecot.imapPort, r.body.email as string, r.body.password as string)).toMatch(/^a OK/)
    expect(await imapLogin(dovecot.imapPort, r.body.email as string, 'not-the-password')).toMatch(/^a NO/)
    // The password the service drew (131 random bits) is stored with one round, still dovecot's scheme.
    const line = readFileSync(`${dataDir}/accounts`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${r.body.email}\t`))
    expect(line).toMatch(/\t\{PBKDF2\}\$1\$[A-Za-z0-9]{16}\$1\$[0-9a-f]{40}\t\d+$/)
  })

  it('POST /new from another web site is refused; Delta Chat (no Origin) and our own sign-up page are not', async () => {
    const refused = {
      status: 403,
      body: { reason: 'accounts are made by Delta Chat or this server’s own page, not by other web sites' },
    }
    // A form or fetch() on any web page POSTs without a preflight; the browser names the page.
    expect(await postNew(svc.httpSocket, '', { origin: 'https://evil.example' })).toEqual(refused)
    expect(await postNew(svc.httpSocket, '', { origin: 'null' })).toEqual(refused)
    expect(await postNew(svc.httpSocket, '', { origin: `http://${DOMAIN}` })).toEqual(refused)
    expect(await postNew(svc.httpSocket, '', { origin: `https://${DOMAIN}.evil.example` })).toEqual(refused)
    expect(await postNew(svc.httpSocket, '', { origin: `https://${DOMAIN}`, 'sec-fetch-site': 'cross-site' })).toEqual(
      refused,
    )
    expect(svc.logs()).toMatch(/sign-up refused for 192\.0\.2\.7: a POST from https:\/\/evil\.example/)
    // Our sign-up page (signup.js: fetch('/new', { method: 'POST' }) from https://DOMAIN/).
    const page = await postNew(svc.httpSocket, '', { origin: `https://${DOMAIN}`, 'sec-fetch-site': 'same-origin' })
    expect(page.status).toBe(200)
    // Delta Chat core's HTTP client: no Origin, no Sec-Fetch-*, no Content-Type.
    expect((await postNew(svc.httpSocket)).status).toBe(200)
  })

  it('registration invite: /new needs a valid invite, which works its number of times', async () => {
    svc.writeConfig({ registration: 'invite' })
    await svc.reload()
    expect(await postNew(svc.httpSocket)).toEqual({
      status: 403,
      body: { reason: 'new accounts on this server need an invite link' },
    })
    expect(await imapLogin(dovecot.imapPort, `invited01@${DOMAIN}`, 'password-1')).toMatch(/^a NO .*invite/)
    const inv = await invite(svc.configPath, 1)
    expect(inv).toMatchObject({ ok: true, uses: 1, registration: 'invite' })
    const ok = await postNew(svc.httpSocket, `?i=${inv.token}`)
    expect(ok.status).toBe(200)
    expect(await imapLogin(dovecot.imapPort, ok.body.email as string, ok.body.password as string)).toMatch(/^a OK/)
    expect(await postNew(svc.httpSocket, `?i=${inv.token}`)).toEqual({
      status: 403,
      body: { reason: 'this invite has been used up' },
    })
    expect((await postNew(svc.httpSocket, '?i=AAAAAAAAAAAAAAAAAAAAAAAA')).body.reason).toBe(
      'this invite is not valid on this server',
    )
    svc.writeConfig({ registration: 'closed' })
    await svc.reload()
    expect(await postNew(svc.httpSocket)).toEqual({
      status: 403,
      body: { reason: 'registration is closed on this server' },
    })
    svc.writeConfig({ registration: 'open', self_signed: 'yes' })
    await svc.reload()
    const self = await postNew(svc.httpSocket)
    expect(self.body.dclogin_url).toBe(
      `dclogin:${self.body.email}?p=${encodeURIComponent(self.body.password as string)}&v=1&ic=3`,
    )
    // The link's QR code, for the sign-up page: the same text, encoded as the page's other QR codes are.
    expect(self.body.dclogin_qr_svg).toMatch(/^<svg /)
    expect(self.body.dclogin_qr_svg).toBe(qrSvg(self.body.dclogin_url as string))
  })

  it('two first logins of one new address at once: the account gets one password, the other login fails', async () => {
    const user = `racerace1@${DOMAIN}`
    const replies = await Promise.all(
      ['password-a', 'password-b', 'password-a', 'password-b'].map((p) => imapLogin(dovecot.imapPort, user, p)),
    )
    const ok = replies.map((r, i) => (r.startsWith('a OK') ? i % 2 : -1)).filter((i) => i >= 0)
    expect(ok.length, replies.join('\n')).toBeGreaterThan(0)
    expect(new Set(ok).size, replies.join('\n')).toBe(1)
    const winner = ok[0] === 0 ? 'password-a' : 'password-b'
    const loser = ok[0] === 0 ? 'password-b' : 'password-a'
    expect(await imapLogin(dovecot.imapPort, user, winner)).toMatch(/^a OK/)
    expect(await imapLogin(dovecot.imapPort, user, loser)).toMatch(/^a NO/)
    expect(readFileSync(`${dataDir}/accounts`, 'utf8')).toMatch(/^racerace1@chat\.example\.org\t\{PBKDF2\}/m)
  })

  it('sessions one after another in one reused imap process: each account sees only its own mailbox', async () => {
    const session = async (user: string, append: boolean): Promise<number> => {
      const client = await imapsClient(dovecot.host, user, 'password-1', dovecot.imapsPort)
      if (append) await client.append('INBOX', `From: ${user}\r\nSubject: mine\r\n\r\nonly mine\r\n`)
      const status = await client.status('INBOX', { messages: true })
      await client.logout()
      return status ? (status.messages ?? -1) : -1
    }
    expect(await session(`reusefirs@${DOMAIN}`, true)).toBe(1)
    expect(await session(`reusesecn@${DOMAIN}`, false)).toBe(0)
    expect(await session(`reusefirs@${DOMAIN}`, false)).toBe(1)
    // dovecot 2.3 logs each session as imap(USER)<PID><SESSION>: the same pid served both accounts.
    const pids = (user: string) =>
      new Set([...dovecot.logs().matchAll(new RegExp(`imap\\(${user}@[^)]*\\)<(\\d+)>`, 'g'))].map((m) => m[1]))
    const logs = await logWith(dovecot.logs, /imap\(reusesecn@[^)]*\)<\d+>.*Logged out/)
    const shared = [...pids('reusefirs')].filter((p) => pids('reusesecn').has(p))
    expect(shared.length, logs.slice(-3000)).toBeGreaterThan(0)
  })

  it("postfix's SASL (service smtp): a refused first login fails, never an OK with nologin (postfix ignores it)", async () => {
    const saslAuth = (user: string, password: string, service: string) =>
      saslAuthAt(stack.authClient, user, password, service)
    // Breaks the rules (local part too short), and a wrong password for an existing account.
    expect(await saslAuth(`short@${DOMAIN}`, 'any-password-at-all', 'smtp')).toMatch(/^FAIL\t1/)
    expect(await saslAuth(`abcdefghi@${DOMAIN}`, 'password-2', 'smtp')).toMatch(/^FAIL\t1/)
    svc.writeConfig({ registration: 'closed' })
    await svc.reload()
    try {
      expect(await saslAuth(`closedsml@${DOMAIN}`, 'any-password-at-all', 'smtp')).toMatch(/^FAIL\t1/)
      // The same refusal for IMAP: imap-login enforces nologin and shows the reason.
      expect(await saslAuth(`closedsml@${DOMAIN}`, 'any-password-at-all', 'imap')).toMatch(/^OK\t1.*\tnologin/)
      expect(await imapLogin(dovecot.imapPort, `closedsml@${DOMAIN}`, 'any-password-at-all')).toMatch(
        /^a NO.*registration is closed/,
      )
    } finally {
      svc.writeConfig({ registration: 'open' })
      await svc.reload()
    }
    // A first login through postfix still creates the account, and its password works.
    expect(await saslAuth(`smtpfirst@${DOMAIN}`, 'smtp-first-password', 'smtp')).toMatch(/^OK\t1/)
    expect(await imapLogin(dovecot.imapPort, `smtpfirst@${DOMAIN}`, 'smtp-first-password')).toMatch(/^a OK/)
  })
})
