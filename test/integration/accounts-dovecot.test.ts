/**
 * chatmail-accounts as a real dovecot's passdb and userdb (dict over its unix socket): accounts are
 * created on first login when the rules allow, a wrong password is refused, refusals carry their
 * reason to the client, accounts survive a restart of the service.
 */

import { chownSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AccountsService, dovecotAuthBlocks, startAccountsService } from '../helpers/accounts.js'
import { type Dovecot, startDovecot } from '../helpers/dovecot.js'
import { imapLogin } from '../helpers/imap-login.js'

const DOMAIN = 'chat.example.org'

describe('chatmail-accounts with dovecot', () => {
  let svc: AccountsService
  let dovecot: Dovecot
  let dataDir: string
  let mailRoot: string

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chatmail-accounts-data-'))
    mailRoot = mkdtempSync(join(tmpdir(), 'chatmail-accounts-mail-'))
    svc = await startAccountsService({ domain: DOMAIN, mailRoot, dataDir })
    dovecot = await startDovecot({
      auth: dovecotAuthBlocks(svc.dictSocket, svc.dir),
      extraConfig: 'auth_failure_delay = 0\nauth_verbose = yes',
    })
    // The mail user (vmail when we are root) creates the mailboxes below the mail root.
    const owner = statSync(dovecot.homeRoot)
    chownSync(mailRoot, owner.uid, owner.gid)
  }, 60_000)

  afterAll(async () => {
    await svc?.stop()
    await dovecot?.stop()
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(mailRoot, { recursive: true, force: true })
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
})
