/**
 * Delta Chat core's bare-domain sign-up, `dcaccount:DOMAIN` (core's automatic_relay_management.rs,
 * login_param_from_host; also its multi-relay onboarding): no HTTP at all. Core draws 9 alphanumeric
 * characters as the local part (the address then lower-cased by addr_normalize) and 22 as the
 * password, and logs in; the server creates the account on that first login. Here against a real
 * dovecot on loopback with chatmail-accounts as its passdb: such a login makes the account, and
 * every guard of POST /new holds on this path too, with the same reason: registration closed, by
 * invitation only, short of disk, short of memory, and one creation budget per client shared by
 * both paths.
 */
import { randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AccountsService,
  type AccountsWithDovecot,
  postNew as postNewAt,
  saslAuth,
  startAccountsWithDovecot,
} from '../helpers/accounts.js'
import type { Dovecot } from '../helpers/dovecot.js'
import { imapLogin } from '../helpers/imap-login.js'

const DOMAIN = 'chat.example.org'
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** What core's login_param_from_host makes for `dcaccount:DOMAIN`: its address and password. */
function coreCredentials(): { addr: string; password: string } {
  const draw = (n: number) => Array.from({ length: n }, () => ALNUM[randomInt(ALNUM.length)]).join('')
  return { addr: `${draw(9)}@${DOMAIN}`.toLowerCase(), password: draw(22) }
}

describe("core's bare-domain dcaccount: sign-up (a first login) against dovecot, with /new's guards", () => {
  let stack: AccountsWithDovecot
  let svc: AccountsService
  let dovecot: Dovecot
  const login = (c: { addr: string; password: string }, from = '127.0.0.1') =>
    imapLogin(dovecot.imapPort, c.addr, c.password, '127.0.0.1', false, from)
  /** POST /new as nginx passes it for a client at `ip`. */
  const postNew = (ip: string, query = '') => postNewAt(svc.httpSocket, query, { host: DOMAIN, 'x-real-ip': ip })
  const configure = async (extra: Record<string, string>) => {
    svc.writeConfig(extra)
    await svc.reload()
  }

  beforeAll(async () => {
    stack = await startAccountsWithDovecot(DOMAIN)
    ;({ svc, dovecot } = stack)
  }, 60_000)

  afterAll(async () => {
    await stack?.stop()
  })

  it("core's credentials make the account on the first login (IMAP or SMTP AUTH); then only that password logs in", async () => {
    const viaImap = coreCredentials()
    expect(await login(viaImap)).toMatch(/^a OK/)
    expect(await login(viaImap)).toMatch(/^a OK/)
    expect(await login({ ...viaImap, password: coreCredentials().password })).toMatch(/^a NO/)
    expect(svc.logs()).toContain(`created account ${viaImap.addr}`)
    // Core may log in to SMTP first: postfix's SASL (service smtp) creates the account as well.
    const viaSmtp = coreCredentials()
    expect(await saslAuth(stack.authClient, viaSmtp.addr, viaSmtp.password, 'smtp', '127.0.0.1')).toMatch(/^OK\t1/)
    expect(await login(viaSmtp)).toMatch(/^a OK/)
    expect(await login({ ...viaSmtp, password: coreCredentials().password })).toMatch(/^a NO/)
  })

  it('registration closed: the first login is refused with the reason /new gives', async () => {
    await configure({ registration: 'closed' })
    try {
      expect(await login(coreCredentials())).toMatch(/^a NO .*registration is closed on this server/)
      expect(await postNew('192.0.2.1')).toMatchObject({
        status: 403,
        body: { reason: 'registration is closed on this server' },
      })
    } finally {
      await configure({ registration: 'open' })
    }
  })

  it('registration by invite: no first login creates an account, not even beside a working invite', async () => {
    await configure({ registration: 'invite' })
    try {
      expect(await login(coreCredentials())).toMatch(/^a NO .*new accounts on this server need an invite link/)
      expect((await postNew('192.0.2.1')).status).toBe(403)
      const before = svc.logs().split('created account').length
      expect(await login(coreCredentials())).toMatch(/^a NO .*need an invite link/)
      expect(svc.logs().split('created account').length).toBe(before)
    } finally {
      await configure({ registration: 'open' })
    }
  })

  it('short of disk: refused with the reason, as /new is', async () => {
    await configure({ min_free_disk: '1000000T' })
    try {
      expect(await login(coreCredentials())).toMatch(/^a NO .*the server is short of disk space/)
      const r = await postNew('192.0.2.1')
      expect(r.status).toBe(503)
      expect(r.body.reason).toMatch(/^the server is short of disk space/)
    } finally {
      await configure({ min_free_disk: '1M' })
    }
  })

  it('short of memory: refused with the reason, as /new is', async () => {
    await configure({ min_available_memory: '1000000T' })
    try {
      expect(await login(coreCredentials())).toMatch(/^a NO .*the server is short of memory/)
      const r = await postNew('192.0.2.1')
      expect(r.status).toBe(503)
      expect(r.body.reason).toMatch(/^the server is short of memory/)
    } finally {
      await configure({ min_available_memory: '1M' })
    }
  })

  it('one creation budget per client for /new and first logins together; other clients keep theirs', async () => {
    await configure({ max_creations_per_client: '2', creation_window: '1h' })
    try {
      // 127.0.0.2: POST /new once (nginx's X-Real-IP), then one first login over IMAP from there.
      expect((await postNew('127.0.0.2')).status).toBe(200)
      const second = coreCredentials()
      expect(await login(second, '127.0.0.2')).toMatch(/^a OK/)
      // The budget is spent: neither path makes a third account for this client ...
      expect(await login(coreCredentials(), '127.0.0.2')).toMatch(/^a NO .*too many new accounts from your address/)
      expect(await postNew('127.0.0.2')).toMatchObject({
        status: 429,
        body: { reason: 'too many new accounts from your address: try again later' },
      })
      // ... its accounts still log in, and another client still creates.
      expect(await login(second, '127.0.0.2')).toMatch(/^a OK/)
      expect(await login(coreCredentials(), '127.0.0.3')).toMatch(/^a OK/)
    } finally {
      await configure({ max_creations_per_client: '100000' })
    }
  })
})
