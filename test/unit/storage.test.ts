/**
 * Issue 12, storage limits: the config keys, what the deploy renders for them (dovecot 2.3 and
 * 2.4, postfix, chatmail-accounts and its expiry timer), and chatmail-accounts' expiry parts on
 * real files: the accounts file rewrite, the last-login record, inactive accounts, old messages.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { importIni } from '../../src/config/ini.js'
import { buildConfig } from '../../src/config/init.js'
import { ConfigError, parseConfigText } from '../../src/config/load.js'
import type { FileResource, Resource } from '../../src/deploy/resources.js'
import { parseConfig } from '../../src/remote/chatmail-accounts/config.js'
import { expireMessages } from '../../src/remote/chatmail-accounts/expire.js'
import { LastLogins, lastLoginUser, parseLastLogins } from '../../src/remote/chatmail-accounts/lastlogin.js'
import { AccountStore, parseAccounts } from '../../src/remote/chatmail-accounts/store.js'
import { accountsOn } from '../helpers/accounts.js'
import { BOOKWORM, buildTestStack } from '../helpers/stack.js'

const DAY = 86400
const SECRET = '0123456789abcdef0123'
const load = (extra: string) =>
  parseConfigText(`domain = "chat.example.org"\n[turn]\nsecret = "${SECRET}"\n${extra}`, 'cm.toml')
const refusal = (extra: string): string => {
  try {
    load(extra)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
  throw new Error('accepted')
}
const fileAt = (resources: Resource[], path: string) =>
  (resources.find((r) => r.kind === 'file' && r.path === path) as FileResource).content

describe('chatmail.toml: storage limits', () => {
  it("has chatmail relays' defaults", () => {
    const c = load('')
    expect(c.mail).toMatchObject({
      maxMessageSize: 31457280,
      maxMailboxSize: '500M',
      deleteMailsAfterSeconds: 20 * DAY,
      deleteLargeAfterSeconds: 7 * DAY,
    })
    expect(c.accounts.deleteInactiveAfterSeconds).toBe(90 * DAY)
    const custom = load('[mail]\ndelete_mails_after = "30d"\n[accounts]\ndelete_inactive_after = "180d"\n')
    expect(custom.mail.deleteMailsAfterSeconds).toBe(30 * DAY)
    expect(custom.accounts.deleteInactiveAfterSeconds).toBe(180 * DAY)
  })
  it('refuses ages under a day (a bare 20 would be 20 seconds) and sizes that cannot work', () => {
    expect(refusal('[mail]\ndelete_mails_after = "20"\n')).toMatch(
      /mail\.delete_mails_after must be a duration of at least 1d/,
    )
    expect(refusal('[accounts]\ndelete_inactive_after = "12h"\n')).toMatch(/accounts\.delete_inactive_after/)
    expect(refusal('[mail]\ndelete_large_after = 7\n')).toMatch(/mail\.delete_large_after must be a duration/)
    expect(refusal('[mail]\nmax_mailbox_size = "500K"\n')).toMatch(/below 1M/)
    expect(refusal('[mail]\nmax_mailbox_size = "20M"\n')).toMatch(/max_message_size \(31457280 bytes\) is above/)
    expect(refusal('[mail]\nmax_mailbox_size = "5X"\n')).toMatch(/mail\.max_mailbox_size must be a size/)
  })
})

describe('chatmail init --from-ini: the expiry ages (chatmail.ini counts days)', () => {
  it('takes them as days, and refuses what is not a number of days', () => {
    const r = importIni(
      '[params]\nmail_domain = chat.example.org\ndelete_mails_after = 30\ndelete_large_after = 3\ndelete_inactive_users_after = 120\n',
      'chatmail.ini',
    )
    expect(r).toMatchObject({
      deleteMailsAfterSeconds: 30 * DAY,
      deleteLargeAfterSeconds: 3 * DAY,
      deleteInactiveAfterSeconds: 120 * DAY,
    })
    expect(r.imported).toEqual([
      'mail_domain',
      'delete_mails_after',
      'delete_large_after',
      'delete_inactive_users_after',
    ])
    const c = buildConfig({
      path: 'x',
      force: false,
      domain: 'chat.example.org',
      profile: 'dovecot',
      expiry: { mails: 30 * DAY, inactive: 120 * DAY },
    })
    expect([
      c.mail.deleteMailsAfterSeconds,
      c.mail.deleteLargeAfterSeconds,
      c.accounts.deleteInactiveAfterSeconds,
    ]).toEqual([30 * DAY, 7 * DAY, 120 * DAY])
    expect(() => importIni('[params]\nmail_domain = x.org\ndelete_mails_after = 20d\n', 'c.ini')).toThrow(
      /c\.ini: delete_mails_after must be a number of days from 1 to 365/,
    )
  })
})

describe('deploy: quota, quota-status, last login, the expiry timer', () => {
  const c = buildConfig({ path: 'x', force: false, domain: '203.0.113.5', profile: 'dovecot' })
  const build = (release: string) => buildTestStack(c, { host: { ...BOOKWORM, release } })
  it('dovecot 2.3 and 2.4: the same quota, full mailboxes answered for postfix, logins recorded', async () => {
    const v23 = fileAt((await build('12')).resources, '/etc/dovecot/dovecot.conf')
    expect(v23).toContain('quota = count:User quota')
    expect(v23).toContain('quota_rule = *:storage=512000k')
    expect(v23).toContain('quota_max_mail_size = 31457280')
    expect(v23).toMatch(/quota_grace = 0\n/)
    // A top-level setting in 2.3: inside plugin {} it would be ignored (and mail bounced at once).
    expect(v23).toMatch(/^quota_full_tempfail = yes$/m)
    expect(v23.slice(v23.indexOf('plugin {'))).not.toMatch(/^\s+quota_full_tempfail/m)
    expect(v23).toContain('quota_status_overquota = 552 5.2.2 Mailbox is full')
    expect(v23).toContain('last_login_dict = proxy:/run/chatmail-accounts/vmail/lastlogin.socket:lastlogin')
    expect(v23).toMatch(/mail_plugins = \$mail_plugins imap_quota last_login/)
    expect(v23).toContain('unix_listener /var/spool/postfix/private/quota-status {')
    const v24 = fileAt((await build('13')).resources, '/etc/dovecot/dovecot.conf')
    expect(v24).toContain('quota_storage_size = 512000k')
    expect(v24).toContain('quota_mail_size = 31457280')
    expect(v24).toContain('quota_storage_grace = 0')
    expect(v24).toContain('quota_full_tempfail = yes')
    expect(v24).toContain('quota_status_overquota = 552 5.2.2 Mailbox is full')
    expect(v24).toContain('dict_proxy_socket_path = /run/chatmail-accounts/vmail/lastlogin.socket')
    expect(v24).toContain('last_login_key = last-login/%{user}')
    expect(v24).not.toMatch(/^\s*plugin \{/m)
  })
  it('postfix asks quota-status at RCPT before anything permits; the message size limit', async () => {
    const main = fileAt((await build('12')).resources, '/etc/postfix/main.cf')
    expect(main).toMatch(
      /^smtpd_recipient_restrictions = check_policy_service unix:private\/quota-status, permit_sasl_authenticated, reject_unauth_destination$/m,
    )
    expect(main).toMatch(/^message_size_limit = 31457280$/m)
  })
  it('chatmail-accounts gets the last-login socket and the ages; the timer runs its expire as root, daily', async () => {
    const spec = await build('12')
    const conf = fileAt(spec.resources, '/etc/chatmail/accounts.conf')
    const parsed = parseConfig(conf)
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    expect(parsed.config.lastloginSocket).toEqual({
      path: '/run/chatmail-accounts/vmail/lastlogin.socket',
      mode: 0o660,
      group: 'vmail',
    })
    expect(parsed.config.expiry).toEqual({
      deleteMailsAfter: 20 * DAY,
      deleteLargeAfter: 7 * DAY,
      largeMessageSize: 200_000,
      deleteInactiveAfter: 90 * DAY,
      exempt: ['doctor@[203.0.113.5]'],
      // Its accounts' mailboxes are not orphans (test/integration/expire-orphans.test.ts).
      usersFile: '/etc/dovecot/users',
    })
    // The mail processes (vmail) reach the socket: it is born with their group in its directory.
    expect(fileAt(spec.resources, '/etc/systemd/system/chatmail-accounts.service')).toMatch(
      /^ExecStartPre=\+\/usr\/bin\/install -d -o chatmail-accounts -g vmail -m 2750 \/run\/chatmail-accounts\/vmail$/m,
    )
    const unit = fileAt(spec.resources, '/etc/systemd/system/chatmail-expire.service')
    expect(unit).toMatch(
      /^ExecStart=\/usr\/bin\/node \/usr\/local\/lib\/chatmail\/chatmail-accounts\.js expire \/etc\/chatmail\/accounts\.conf$/m,
    )
    expect(unit).toMatch(/^Type=oneshot$/m)
    expect(fileAt(spec.resources, '/etc/systemd/system/chatmail-expire.timer')).toMatch(/^OnCalendar=\*-\*-\* /m)
    const timer = spec.resources.find((r) => r.kind === 'service' && r.unit === 'chatmail-expire.timer')
    expect(timer).toMatchObject({ enabled: true, running: true })
  })
  it('accounts.conf refuses an expiry age under a day', () => {
    const r = parseConfig(
      'domain = x.org\ndata_dir = /d\nmail_root = /m\ndict_socket = /a\nsocketmap_socket = /b\nhttp_socket = /c\ncontrol_socket = /e\ndelete_mails_after = 3600\n',
    )
    expect(r).toEqual({ ok: false, errors: ['delete_mails_after "3600" is not a duration of at least 1d'] })
  })
})

describe('chatmail-accounts: the expiry', () => {
  const rules = { domain: '203.0.113.5', localMinLength: 9, localMaxLength: 9, passwordMinLength: 9 }
  const policy = {
    rules,
    registration: 'open' as const,
    minFreeDisk: 0,
    minAvailableMemory: 0,
    pbkdf2Rounds: 1000,
    mailRoot: '/home/vmail/mail',
    selfSigned: true,
  }
  const setup = (now: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-expiry-'))
    return setupWith(new AccountStore(dir), dir, now)
  }
  const setupWith = (store: AccountStore, dir: string, now: number) => accountsOn(store, dir, policy, now)

  it('deletes accounts without a login (or, never logged in, made) before the cutoff; the file stays consistent', () => {
    const now = 1_800_000_000
    const { dir, store, lastLogins, accounts, log } = setup(now)
    const add = (local: string, created: number) =>
      store.add({ address: `${local}@[203.0.113.5]`, hash: '{PBKDF2}x', created })
    add('oldnologi', now - 100 * DAY)
    add('oldactive', now - 100 * DAY)
    add('newaccoun', now - 5 * DAY)
    add('oldloginn', now - 200 * DAY)
    lastLogins.record('oldloginn@[203.0.113.5]', now - 95 * DAY)
    // A login through the plugin's key, in either spelling of the address.
    const user = lastLoginUser('shared/last-login/oldactive@203.0.113.5')
    expect(user).toBe('oldactive@203.0.113.5')
    accounts.recordLogin(user as string)
    accounts.recordLogin('nobody123@[203.0.113.5]')
    const expired = accounts.expireInactive(now - 90 * DAY)
    expect(expired).toEqual([
      { address: 'oldnologi@[203.0.113.5]', home: '/home/vmail/mail/203.0.113.5/oldnologi' },
      { address: 'oldloginn@[203.0.113.5]', home: '/home/vmail/mail/203.0.113.5/oldloginn' },
    ])
    expect(log).toContain('deleted inactive account oldnologi@[203.0.113.5]')
    // Appends after the rewrite land in the new file; a fresh load sees exactly what is left.
    add('afterward', now)
    store.close()
    const left = parseAccounts(readFileSync(join(dir, 'accounts'), 'utf8'))
    expect([...left.accounts.keys()]).toEqual([
      'oldactive@[203.0.113.5]',
      'newaccoun@[203.0.113.5]',
      'afterward@[203.0.113.5]',
    ])
    expect(left.skipped).toEqual([])
    lastLogins.save()
    expect([...parseLastLogins(readFileSync(join(dir, 'lastlogin'), 'utf8'))]).toEqual([
      ['oldactive@[203.0.113.5]', now],
    ])
    expect(new AccountStore(dir).size).toBe(3)
  })

  it('cut off half-way, the expiry resumes: removed accounts stay on the expiring list until their mailboxes are gone, and cannot be made again meanwhile', async () => {
    const now = 1_800_000_000
    const { dir, store, accounts } = setup(now)
    store.add({ address: 'oldnologi@[203.0.113.5]', hash: '{PBKDF2}x', created: now - 100 * DAY })
    store.add({ address: 'newaccoun@[203.0.113.5]', hash: '{PBKDF2}x', created: now - DAY })
    const home = '/home/vmail/mail/203.0.113.5/oldnologi'
    expect(accounts.expireInactive(now - 90 * DAY)).toEqual([{ address: 'oldnologi@[203.0.113.5]', home }])
    // The expire command dies here, before deleting the mailbox; the service restarts.
    store.close()
    const store2 = new AccountStore(dir)
    expect(readFileSync(join(dir, 'expiring'), 'utf8')).toBe('oldnologi@[203.0.113.5]\n')
    const { accounts: accounts2 } = setupWith(store2, dir, now)
    expect(accounts2.exists('oldnologi@[203.0.113.5]')).toBe(false)
    // A first login with that address finds no account and may not make one yet: its old
    // mailbox (with the old owner's mail) may still be there.
    expect(await accounts2.passdb('oldnologi@203.0.113.5', 'a-new-password', '192.0.2.1', 'imap')).toMatchObject({
      nologin: 'y',
      reason: expect.stringMatching(/being removed: try again later/),
    })
    // Postfix's SASL ignores nologin: for it a refusal is no account at all.
    expect(await accounts2.passdb('oldnologi@203.0.113.5', 'a-new-password', '192.0.2.1', 'smtp')).toBeUndefined()
    // The next run hands it out again; once its mailbox is gone, the address is free.
    expect(accounts2.expireInactive(now - 90 * DAY)).toEqual([{ address: 'oldnologi@[203.0.113.5]', home }])
    accounts2.mailboxesDeleted(['oldnologi@[203.0.113.5]'])
    expect(readFileSync(join(dir, 'expiring'), 'utf8')).toBe('')
    expect(accounts2.expireInactive(now - 90 * DAY)).toEqual([])
    expect(await accounts2.passdb('oldnologi@203.0.113.5', 'a-new-password', '192.0.2.1', 'imap')).toMatchObject({
      password: expect.stringMatching(/^\{PLAIN\}/),
    })
    // Cut off between the two files (the list written, the account still in its file) and the
    // account logged in since: it stays an account, with its mailbox.
    writeFileSync(join(dir, 'expiring'), 'newaccoun@[203.0.113.5]\n')
    store2.close()
    const { accounts: accounts3, store: store3 } = setupWith(new AccountStore(dir), dir, now)
    expect(accounts3.expireInactive(now - 90 * DAY)).toEqual([])
    expect(store3.expiringList()).toEqual([])
    expect(accounts3.exists('newaccoun@[203.0.113.5]')).toBe(true)
  })

  it('last logins: one change per account and day; the file is rewritten whole', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-lastlogin-'))
    const l = new LastLogins(dir)
    l.record('a@x', 10 * DAY + 5)
    l.record('a@x', 10 * DAY + 500)
    expect(l.get('a@x')).toBe(10 * DAY + 5)
    l.record('a@x', 11 * DAY + 1)
    expect(l.get('a@x')).toBe(11 * DAY + 1)
    l.save()
    expect(readFileSync(join(dir, 'lastlogin'), 'utf8')).toBe(`a@x\t${11 * DAY + 1}\n`)
    expect(new LastLogins(dir).get('a@x')).toBe(11 * DAY + 1)
    expect(lastLoginUser('shared/metadata/x')).toBeUndefined()
    expect(parseLastLogins('a@x\t12\nbroken\nb@x\tnan\n')).toEqual(new Map([['a@x', 12]]))
  })

  it('old messages: older than the age go, large seen ones earlier; tmp/ and exempt mailboxes stay', () => {
    const root = mkdtempSync(join(tmpdir(), 'chatmail-maildirs-'))
    const now = Math.floor(Date.now() / 1000)
    const put = (rel: string, bytes: number, ageDays: number) => {
      const path = join(root, rel)
      mkdirSync(join(path, '..'), { recursive: true })
      writeFileSync(path, Buffer.alloc(bytes, 0x61))
      utimesSync(path, now - ageDays * DAY, now - ageDays * DAY)
    }
    put('user1/cur/1.old:2,S', 100, 21)
    put('user1/cur/2.fresh:2,S', 100, 1)
    put('user1/cur/3.large:2,S', 300_000, 8)
    put('user1/new/4.largenew', 300_000, 8)
    put('user1/tmp/5.old', 100, 30)
    put('user1/.DeltaChat/cur/6.old:2,S', 100, 25)
    put('doctor/cur/7.old:2,S', 100, 30)
    put('user2/new/8.fresh', 100, 0)
    const r = expireMessages(
      root,
      { mailsBefore: now - 20 * DAY, largeBefore: now - 7 * DAY, largeSize: 200_000 },
      new Set(['doctor']),
    )
    expect(r.errors).toEqual([])
    expect(r.deleted).toEqual(new Map([['user1', 3]]))
    expect(readdirSync(join(root, 'user1/cur')).sort()).toEqual(['2.fresh:2,S'])
    expect(readdirSync(join(root, 'user1/new'))).toEqual(['4.largenew'])
    expect(readdirSync(join(root, 'user1/tmp'))).toEqual(['5.old'])
    expect(readdirSync(join(root, 'user1/.DeltaChat/cur'))).toEqual([])
    expect(readdirSync(join(root, 'doctor/cur'))).toEqual(['7.old:2,S'])
    expect(
      expireMessages(join(root, 'absent'), { mailsBefore: now, largeBefore: now, largeSize: 1 }, new Set()),
    ).toEqual({
      deleted: new Map(),
      errors: [],
    })
  })
})
