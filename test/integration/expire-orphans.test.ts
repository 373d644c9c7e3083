/**
 * The expiry's sweep of orphan mailboxes (src/remote/chatmail-accounts/orphans.ts): the real
 * chatmail-accounts service and its `expire` command, a mail root and data dir in temp dirs. An
 * expiry before the `expiring` list could be cut off between removing an account from the file and
 * deleting its mailbox; the next run removes such a directory and keeps the mailboxes of accounts,
 * of the doctor (expire_exempt) and of an operator's users file. With the accounts file gone or
 * unreadable it removes nothing and fails. The sweep itself, on real files: the expiring list and
 * a freshly modified directory are kept too.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sweepOrphans } from '../../src/remote/chatmail-accounts/orphans.js'
import { type AccountsService, expireCommand, makeMailbox, startAccountsService } from '../helpers/accounts.js'

const DOMAIN = 'chat.example.org'
const DAY = 86400
const now = Math.floor(Date.now() / 1000)

/** A mailbox with one fresh message (the old-message step leaves it), its directory `ageDays` old. */
const mailboxAged = (dir: string, ageDays: number) => makeMailbox(dir, now - ageDays * DAY)

describe('the expiry removes orphan mailboxes and nothing else', () => {
  let svc: AccountsService
  let dataDir: string
  let mailRoot: string
  let usersFile: string
  const mailbox = (local: string) => join(mailRoot, DOMAIN, local)
  /** Mailboxes that must stay: an account's, the doctor's, a users-file account's. */
  const KEPT = ['alice0001', 'doctor', 'operator']

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chatmail-orphans-data-'))
    mailRoot = mkdtempSync(join(tmpdir(), 'chatmail-orphans-mail-'))
    usersFile = join(dataDir, 'users')
    writeFileSync(join(dataDir, 'accounts'), `alice0001@${DOMAIN}\t{PBKDF2}x\t${now - DAY}\n`, { mode: 0o600 })
    writeFileSync(usersFile, `# an operator's account\noperator@${DOMAIN}:{SHA512-CRYPT}$6$x::::::\n`)
    for (const local of [...KEPT, 'orphan001']) mailboxAged(mailbox(local), 3)
    svc = await startAccountsService({
      domain: DOMAIN,
      mailRoot,
      dataDir,
      extra: { expire_exempt: `doctor@${DOMAIN}`, users_file: usersFile },
    })
  }, 60_000)

  afterAll(async () => {
    await svc?.stop()
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(mailRoot, { recursive: true, force: true })
  })

  it('removes the mailbox of no account, keeps the account’s, the doctor’s and the operator’s', async () => {
    const r = await expireCommand(svc.configPath)
    expect(r.stderr).toMatch(`removed 1 orphan mailbox(es): directories in ${join(mailRoot, DOMAIN)} of no account`)
    expect(r.stderr).toMatch(/expiry: 0 inactive account\(s\) deleted, 0 old message\(s\) in 0 mailbox\(es\), 1 orphan/)
    expect(r.code, r.stderr).toBe(0)
    expect(existsSync(mailbox('orphan001'))).toBe(false)
    for (const local of KEPT) expect(existsSync(join(mailbox(local), 'cur', '1.host:2,S')), local).toBe(true)
  })

  it.each([
    { how: 'gone', code: 'ENOENT', replace: () => {} },
    { how: 'unreadable (a directory in its place)', code: 'EISDIR', replace: (f: string) => mkdirSync(f) },
  ])('the accounts file $how: removes nothing, says why, fails the run', async ({ code, replace }) => {
    mailboxAged(mailbox('orphan002'), 3)
    const accounts = join(dataDir, 'accounts')
    renameSync(accounts, `${accounts}.away`)
    replace(accounts)
    try {
      const r = await expireCommand(svc.configPath)
      expect(r.stderr).toMatch(`orphan mailboxes: none removed: cannot read ${accounts}: ${code}`)
      expect(r.code).toBe(1)
      for (const local of [...KEPT, 'orphan002']) expect(existsSync(mailbox(local)), local).toBe(true)
    } finally {
      rmSync(accounts, { recursive: true, force: true })
      renameSync(`${accounts}.away`, accounts)
    }
  })

  it('back in place, the next run removes the second orphan', async () => {
    const r = await expireCommand(svc.configPath)
    expect(r.code, r.stderr).toBe(0)
    expect(existsSync(mailbox('orphan002'))).toBe(false)
    for (const local of KEPT) expect(existsSync(mailbox(local)), local).toBe(true)
  })
})

describe('sweepOrphans on real files', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatmail-orphans-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const setup = (name: string, accounts: string) => {
    const dataDir = join(dir, name, 'data')
    const domainDir = join(dir, name, 'mail', DOMAIN)
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(join(dataDir, 'accounts'), accounts)
    writeFileSync(join(dataDir, 'expiring'), `leaving01@${DOMAIN}\n`)
    const sweep = {
      dataDir,
      domainDir,
      usersFile: join(dir, name, 'no-users-file'),
      exempt: [`doctor@${DOMAIN}`],
      now,
      minAgeSeconds: DAY,
    }
    return { domainDir, sweep }
  }

  it('keeps the expiring list’s mailboxes and an orphan modified within the last day', () => {
    const { domainDir, sweep } = setup('keeps', `alice0001@${DOMAIN}\t{PBKDF2}x\t${now}\n`)
    for (const local of ['alice0001', 'doctor', 'leaving01', 'orphan001']) mailboxAged(join(domainDir, local), 3)
    mailboxAged(join(domainDir, 'fresh0001'), 0)
    expect(sweepOrphans(sweep)).toEqual({ ok: true, removed: 1, errors: [] })
    expect(existsSync(join(domainDir, 'orphan001'))).toBe(false)
    for (const local of ['alice0001', 'doctor', 'leaving01', 'fresh0001']) {
      expect(existsSync(join(domainDir, local)), local).toBe(true)
    }
  })

  it('an accounts file with a line it cannot read: removes nothing', () => {
    const { domainDir, sweep } = setup('torn', `alice0001@${DOMAIN}\t{PBKDF2}x\t${now}\nbob00001@${DOMAIN}\t{PBK`)
    for (const local of ['alice0001', 'bob00001', 'orphan001']) mailboxAged(join(domainDir, local), 3)
    expect(sweepOrphans(sweep)).toEqual({ ok: false, reason: expect.stringMatching(/lines it cannot read \(2\)/) })
    for (const local of ['alice0001', 'bob00001', 'orphan001']) expect(existsSync(join(domainDir, local))).toBe(true)
  })
})
