/**
 * Issue 23 (hardening, round two) against the built chatmail-accounts and a real dovecot 2.3 whose
 * passdb and userdb chain is our template's (the doctor's passwd-file, the operator's users file,
 * then chatmail-accounts): an address of another passdb is never created by a wrong password, over
 * IMAP or postfix's SASL; names that are no single directory (`.`, `..`) or are reserved are
 * refused, and the expiry never deletes outside one mailbox; one single-use invite makes one
 * account however many ask at once; IPv6 clients count by /64; the recipient check folds case as
 * dovecot does; a damaged invites file is kept aside and logins go on.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeNetstring } from '../../src/remote/chatmail-accounts/socketmap.js'
import {
  type AccountsService,
  expireCommand,
  makeMailbox,
  postNew,
  saslAuth as saslAuthAt,
  startAccountsService,
  templateAuthChain,
} from '../helpers/accounts.js'
import { type Dovecot, startDovecot } from '../helpers/dovecot.js'
import { imapLogin as imapLoginAt } from '../helpers/imap-login.js'

const DOMAIN = 'chat.example.org'

/** One socketmap `mailbox` lookup, as postfix's recipient check asks it: the reply. */
function mailboxLookup(socketPath: string, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath)
    let buf = Buffer.alloc(0)
    s.on('error', reject)
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      const m = /^(\d+):/.exec(buf.toString('latin1'))
      if (m && buf.length >= m[0].length + Number(m[1]) + 1) {
        s.end()
        resolve(buf.subarray(m[0].length, m[0].length + Number(m[1])).toString())
      }
    })
    s.write(encodeNetstring(`mailbox ${address}`))
  })
}

let clients = 0
/**
 * A client address of its own for each login: dovecot's auth penalty (up to 15 s a login after
 * failed ones) is per client address, and this file fails logins on purpose.
 */
const nextClient = () => `127.0.1.${(++clients % 250) + 1}`

/** postfix's SASL on the test dovecot, from a client address of its own. */
let authClient = ''
const saslAuth = (_d: Dovecot, user: string, password: string, service = 'smtp') =>
  saslAuthAt(authClient, user, password, service, nextClient())

/** IMAP LOGIN on the test dovecot, from a client address of its own: the tagged reply. */
let dovecotPort = 0
const imapLogin = (user: string, password: string) =>
  imapLoginAt(dovecotPort, user, password, '127.0.0.1', false, nextClient())

const accountLines = (dataDir: string) => readFileSync(join(dataDir, 'accounts'), 'utf8')

describe('chatmail-accounts hardening (issue 23) with dovecot and our passdb chain', () => {
  let svc: AccountsService
  let dovecot: Dovecot
  let dataDir: string
  let mailRoot: string
  let files: string

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chatmail-hardening-data-'))
    mailRoot = mkdtempSync(join(tmpdir(), 'chatmail-hardening-mail-'))
    files = mkdtempSync(join(tmpdir(), 'chatmail-hardening-files-'))
    chmodSync(files, 0o755)
    // dovecot's auth process (its internal user) reads these, as it reads /etc/dovecot/* (root:dovecot 0640).
    writeFileSync(join(files, 'doctor.passwd'), `doctorabc@${DOMAIN}:{PLAIN}doctor-password::::::\n`, { mode: 0o644 })
    writeFileSync(join(files, 'users'), `# operator\nopera1234@${DOMAIN}:{PLAIN}rightpass123::::::\n`, { mode: 0o644 })
    svc = await startAccountsService({
      domain: DOMAIN,
      mailRoot,
      dataDir,
      extra: { passwd_files: `${join(files, 'doctor.passwd')} ${join(files, 'users')}` },
    })
    dovecot = await startDovecot({
      auth: templateAuthChain({
        dictSocket: svc.dictSocket,
        dir: svc.dir,
        doctor: join(files, 'doctor.passwd'),
        users: join(files, 'users'),
        mailRoot,
      }),
      extraConfig: 'auth_failure_delay = 0\nauth_verbose = yes',
    })
    dovecotPort = dovecot.imapPort
    authClient = join(dovecot.dir, 'run', 'auth-client')
    const owner = statSync(dovecot.homeRoot)
    chownSync(mailRoot, owner.uid, owner.gid)
  }, 60_000)

  afterAll(async () => {
    await svc?.stop()
    await dovecot?.stop()
    for (const d of [dataDir, mailRoot, files]) if (d) rmSync(d, { recursive: true, force: true })
  })

  it("a wrong password for another passdb's address fails over IMAP and SASL, and creates nothing", async () => {
    for (const user of [`opera1234@${DOMAIN}`, `doctorabc@${DOMAIN}`]) {
      expect(await imapLogin(user, 'wrongpass999'), user).toMatch(/^a NO/)
      expect(await saslAuth(dovecot, user, 'wrongpass999'), user).toMatch(/^FAIL\t1/)
      expect(await saslAuth(dovecot, user, 'wrongpass999', 'imap'), user).toMatch(/^FAIL\t1/)
      // Upper case reaches the same owner.
      expect(await saslAuth(dovecot, user.toUpperCase(), 'wrongpass999', 'imap'), user).toMatch(/^FAIL\t1/)
    }
    expect(accountLines(dataDir)).not.toMatch(/opera1234|doctorabc/)
    // Their own passwords work, through their own passdb.
    expect(await imapLogin(`opera1234@${DOMAIN}`, 'rightpass123')).toMatch(/^a OK/)
    expect(await imapLogin(`doctorabc@${DOMAIN}`, 'doctor-password')).toMatch(/^a OK/)
    // And mail to them has a mailbox (postfix's recipient check), when dovecot's userdb finds it:
    // a line without uid and gid fields is a password alone to dovecot.
    expect(await mailboxLookup(svc.socketmapSocket, `opera1234@${DOMAIN}`)).toBe(`OK opera1234@${DOMAIN}`)
    writeFileSync(join(files, 'users'), `nouserdb1@${DOMAIN}:{PLAIN}rightpass123\n`, { flag: 'a' })
    expect(await mailboxLookup(svc.socketmapSocket, `nouserdb1@${DOMAIN}`)).toBe('NOTFOUND ')
    expect(await saslAuth(dovecot, `nouserdb1@${DOMAIN}`, 'wrongpass999')).toMatch(/^FAIL\t1/)
    expect(accountLines(dataDir)).not.toMatch(/nouserdb1/)
  })

  it('an address added to a passwd-file later is no longer ours, even if this service made it before', async () => {
    expect(await imapLogin(`latecomer@${DOMAIN}`, 'attacker-pass')).toMatch(/^a OK/)
    expect(accountLines(dataDir)).toMatch(/^latecomer@/m)
    writeFileSync(join(files, 'users'), `latecomer@${DOMAIN}:{PLAIN}operator-pass::::::\n`, { flag: 'a' })
    // dovecot looks at a passwd-file's stamp at most once a second.
    await new Promise((r) => setTimeout(r, 1100))
    expect(await saslAuth(dovecot, `latecomer@${DOMAIN}`, 'attacker-pass', 'imap')).toMatch(/^FAIL\t1/)
    expect(await imapLogin(`latecomer@${DOMAIN}`, 'operator-pass')).toMatch(/^a OK/)
  })

  it('a passwd-file that cannot be read stops creation (with the reason), not logins', async () => {
    const users = join(files, 'users')
    const text = readFileSync(users, 'utf8')
    rmSync(users)
    mkdirSync(users) // a directory: read fails with EISDIR
    try {
      expect(await imapLogin(`unknown01@${DOMAIN}`, 'password-1')).toMatch(/^a NO .*cannot create accounts right now/)
      expect(await saslAuth(dovecot, `unknown01@${DOMAIN}`, 'password-1')).toMatch(/^FAIL\t1/)
      expect((await postNew(svc.httpSocket)).status).toBe(503)
      expect(svc.logs()).toMatch(/cannot read .*users \(no account is created while it is unreadable\)/)
    } finally {
      rmSync(users, { recursive: true })
      writeFileSync(users, text, { mode: 0o644 })
    }
    expect(await imapLogin(`unknown01@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
  })

  it('names that are no single directory, or reserved, are refused with the reason', async () => {
    svc.writeConfig({ username_min_length: '1', username_max_length: '32' })
    await svc.reload()
    try {
      for (const local of ['.', '..', '.hidden', 'trail.', 'a..b']) {
        expect(await imapLogin(`${local}@${DOMAIN}`, 'password-1'), local).toMatch(/^a NO/)
      }
      for (const local of ['webmaster', 'postmaster', 'abuse', 'root', 'hostmaster', 'admin', 'mailer-daemon']) {
        expect(await imapLogin(`${local}@${DOMAIN}`, 'password-1'), local).toMatch(/^a NO .*is reserved on this server/)
      }
      expect(await imapLogin(`a.b@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    } finally {
      svc.writeConfig({ username_min_length: '9', username_max_length: '9' })
      await svc.reload()
    }
    expect(accountLines(dataDir)).not.toMatch(/^(\.|\.\.|webmaster|postmaster|abuse|root)@/m)
  })

  it('the recipient check folds case as dovecot does: ASCII only (no Kelvin sign for k)', async () => {
    expect(await imapLogin(`kelvin001@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    expect(await mailboxLookup(svc.socketmapSocket, `KELVIN001@${DOMAIN}`)).toMatch(/^OK /)
    expect(await mailboxLookup(svc.socketmapSocket, `\u212Aelvin001@${DOMAIN}`)).toBe('NOTFOUND ')
    expect(await imapLogin(`\u212Aelvin001@${DOMAIN}`, 'password-1')).toMatch(/^a NO/)
  })

  it('one single-use invite makes one account, however many ask at once', async () => {
    svc.writeConfig({ registration: 'invite' })
    await svc.reload()
    try {
      const { execFileSync } = await import('node:child_process')
      const { ACCOUNTS_PROGRAM } = await import('../helpers/accounts.js')
      const inv = JSON.parse(
        execFileSync(process.execPath, [ACCOUNTS_PROGRAM, 'invite', svc.configPath, '1', '3600']).toString(),
      ) as { token: string }
      const before = accountLines(dataDir).split('\n').length
      const replies = await Promise.all(Array.from({ length: 15 }, () => postNew(svc.httpSocket, `?i=${inv.token}`)))
      expect(replies.filter((r) => r.status === 200)).toHaveLength(1)
      expect(replies.filter((r) => r.status === 403 && r.body.reason === 'this invite has been used up')).toHaveLength(
        14,
      )
      expect(accountLines(dataDir).split('\n').length).toBe(before + 1)
    } finally {
      svc.writeConfig({ registration: 'open' })
      await svc.reload()
    }
  })

  it('the creation limit counts an IPv6 client by its /64', async () => {
    svc.writeConfig({ max_creations_per_client: '3' })
    await svc.reload()
    try {
      const replies = []
      for (let i = 1; i <= 10; i++)
        replies.push(await postNew(svc.httpSocket, '', { 'x-real-ip': `2001:db8:1:2::${i.toString(16)}` }))
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429, 429, 429, 429, 429, 429, 429])
      // Another /64 is another client.
      expect((await postNew(svc.httpSocket, '', { 'x-real-ip': '2001:db8:1:3::1' })).status).toBe(200)
    } finally {
      svc.writeConfig({ max_creations_per_client: '100000' })
      await svc.reload()
    }
  })

  it('a damaged invites file is kept aside and reported; the service starts and logins go on', async () => {
    writeFileSync(join(dataDir, 'invites.json'), '')
    await svc.restart()
    expect(svc.logs()).toMatch(/invites\.json is damaged .*moved to .*invites\.json\.damaged-\d+/)
    expect(readdirSync(dataDir).filter((f) => f.startsWith('invites.json.damaged-'))).toHaveLength(1)
    expect(await imapLogin(`kelvin001@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
    expect(await imapLogin(`afterdmg1@${DOMAIN}`, 'password-1')).toMatch(/^a OK/)
  })
})

describe('the expiry deletes one mailbox, never a directory above it', () => {
  let svc: AccountsService
  let dataDir: string
  let mailRoot: string

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chatmail-dotdot-data-'))
    mailRoot = mkdtempSync(join(tmpdir(), 'chatmail-dotdot-mail-'))
    const old = Math.floor(Date.now() / 1000) - 400 * 86400
    // What an earlier version let a first login make with username_min_length <= 2: `..`, whose
    // home is the mail root itself, and `.`, the domain's directory; both long inactive.
    writeFileSync(
      join(dataDir, 'accounts'),
      `..@${DOMAIN}\t{PBKDF2}x\t${old}\n.@${DOMAIN}\t{PBKDF2}x\t${old}\nalice0001@${DOMAIN}\t{PBKDF2}x\t${old}\n` +
        // Made by a wrong password for an operator's account before such addresses were refused:
        // the mailbox is the operator's.
        `shadowed1@${DOMAIN}\t{PBKDF2}x\t${old}\n`,
      { mode: 0o600 },
    )
    writeFileSync(join(dataDir, 'users'), `shadowed1@${DOMAIN}:{PLAIN}operator-pass::\n`)
    for (const local of ['alice0001', 'bob000001', 'shadowed1']) makeMailbox(join(mailRoot, DOMAIN, local))
    svc = await startAccountsService({
      domain: DOMAIN,
      mailRoot,
      dataDir,
      extra: {
        username_min_length: '1',
        delete_inactive_after: '90d',
        delete_mails_after: '365d',
        passwd_files: join(dataDir, 'users'),
      },
    })
  }, 60_000)

  afterAll(async () => {
    await svc?.stop()
    for (const d of [dataDir, mailRoot]) if (d) rmSync(d, { recursive: true, force: true })
  })

  it('an inactive `..` or `.` account takes no other mailbox with it, nor one of another passdb', async () => {
    await expireCommand(svc.configPath)
    expect(existsSync(join(mailRoot, DOMAIN, 'bob000001', 'cur'))).toBe(true)
    // Another passdb's mailbox, whatever this service's file said.
    expect(existsSync(join(mailRoot, DOMAIN, 'shadowed1', 'cur'))).toBe(true)
    // alice0001 was inactive too: its own mailbox, and only it, is gone.
    expect(existsSync(join(mailRoot, DOMAIN, 'alice0001'))).toBe(false)
    expect(existsSync(join(mailRoot, DOMAIN))).toBe(true)
  })
})
