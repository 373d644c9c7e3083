/**
 * `chatmail backup` and `chatmail restore` across Debian 12 → 13 (issue 29). A Debian 12 host is
 * deployed; accounts are made by real IMAP logins, encrypted-shaped mail goes between them over
 * submission (one message read, one left unread, one held in postfix's queue). `chatmail backup`
 * copies the repository to the runner; a second backup of the unchanged server adds almost
 * nothing. The Debian 12 host is stopped and a fresh Debian 13 host takes its address (the same
 * TESTHOST index: an IP-only server keeps its address, as an operator moving a floating IP does).
 * A tampered copy is refused before anything changes; the sound copy is restored: every message
 * file and the accounts file (names, sizes, owners, modes, checksums), the TLS key identical, the
 * same passwords log in, the held message is delivered from the restored queue, the doctor is
 * green; a rerun changes nothing.
 */
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import SMTPConnection from 'nodemailer/lib/smtp-connection'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ACCOUNTS, DOVECOT_USERS, PATHS } from '../../src/server/paths.js'
import { manifestCommand, parseManifest } from '../helpers/backup.js'
import {
  type ConfiguredHost,
  type DeployedHost,
  startConfiguredHost,
  startDeployedHost,
} from '../helpers/deployed-host.js'
import { imapsClient } from '../helpers/imap-login.js'
import { pgpMimeMessage } from '../helpers/pgp-mime.js'
import { deployHostArgs, guestShell, testHostSkipReason } from '../helpers/testhost.js'

const OLD = { name: 'th-bk-12', index: 180, suite: 'bookworm' } as const
const NEW = { name: 'th-bk-13', index: 180, suite: 'trixie' } as const
const skip = testHostSkipReason()

interface Account {
  email: string
  password: string
}

async function submit(host: string, from: Account, to: string): Promise<void> {
  const conn = new SMTPConnection({ host, port: 465, secure: true, tls: { rejectUnauthorized: false } })
  const call = <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
    new Promise<T>((res, rej) => fn((err, v) => (err ? rej(err) : res(v as T))))
  await new Promise<void>((res, rej) => {
    conn.once('error', rej)
    conn.connect(() => res())
  })
  try {
    await call((cb) => conn.login({ credentials: { user: from.email, pass: from.password } }, cb))
    await call((cb) =>
      conn.send({ from: from.email, to: [to] }, pgpMimeMessage({ from: from.email, to }).toString('latin1'), cb),
    )
  } finally {
    conn.quit()
  }
}

async function inbox(host: string, a: Account, want: number): Promise<number> {
  let n = 0
  for (let i = 0; i < 100; i++) {
    const c = await imapsClient(host, a.email, a.password)
    const s = await c.status('INBOX', { messages: true })
    await c.logout()
    n = s ? (s.messages ?? 0) : 0
    if (n >= want) break
    await new Promise((r) => setTimeout(r, 300))
  }
  return n
}

describe.skipIf(skip)(`backup on Debian 12, restore on a fresh Debian 13${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let old: DeployedHost | undefined
  let fresh: ConfiguredHost | undefined
  let ip: string
  let accounts: Account[]
  let backupDir: string
  /** Every message file, the accounts files and the TLS key: "path size owner mode sha256". */
  let before: string[]
  const data = [PATHS.mailRoot, ACCOUNTS.accountsFile, DOVECOT_USERS, PATHS.tlsKey]
  // The doctor's own mailbox changes with every doctor run; the users' messages are files in cur/ and new/.
  const manifest = async (h: ConfiguredHost) =>
    parseManifest(await guestShell(h.host, manifestCommand(data))).filter(
      (l) => !l.startsWith(`${PATHS.mailRoot}/`) || (/\/(cur|new)\//.test(l) && !/\/doctor[^/]*\//.test(l)),
    )

  beforeAll(async () => {
    old = await startDeployedHost(OLD)
    ip = old.host.host
    // Local parts of exactly 9 characters: accounts.username_min_length and _max_length.
    accounts = [1, 2, 3].map((i) => ({ email: `bkaccnt0${i}@[${ip}]`, password: `backup-test-password-${i}` }))
    for (const a of accounts) await (await imapsClient(ip, a.email, a.password)).logout()
    const [a, b, c] = accounts as [Account, Account, Account]
    await submit(ip, a, b.email)
    await submit(ip, b, a.email)
    await submit(ip, a, c.email)
    expect(await inbox(ip, b, 1)).toBe(1)
    expect(await inbox(ip, a, 1)).toBe(1)
    expect(await inbox(ip, c, 1)).toBe(1)
    // b reads its message (flags, cur/); c's stays unread.
    const cb = await imapsClient(ip, b.email, b.password)
    await cb.mailboxOpen('INBOX')
    await cb.messageFlagsAdd('1:*', ['\\Seen'])
    await cb.logout()
    // One message held in postfix's queue: deliveries deferred, the message put on hold, deliveries back.
    await guestShell(old.host, "postconf -e 'defer_transports = lmtp' && postfix reload")
    await submit(ip, a, c.email)
    await guestShell(
      old.host,
      'for i in $(seq 50); do [ -n "$(postqueue -j)" ] && break; sleep 0.2; done; postsuper -h ALL; postconf -X defer_transports && postfix reload',
    )
    expect(await guestShell(old.host, 'postqueue -j')).toMatch(/"queue_name": ?"hold"/)
  }, 1_500_000)

  afterAll(async () => {
    await old?.stop()
    await fresh?.stop()
  })

  test('a backup copies the repository here; a second one of the unchanged server adds almost nothing', async () => {
    const h = old as DeployedHost
    const args = ['backup', `root@${ip}`, '-i', h.host.keyFile, '--known-hosts', h.host.knownHostsFile, '--json']
    const first = await h.cli(args, 600_000)
    expect(first.code, first.stderr).toBe(0)
    const r1 = JSON.parse(first.stdout)
    writeFileSync(join(h.dir, 'backup-1.json'), first.stdout)
    backupDir = r1.localDir
    expect(r1.files).toBeGreaterThan(5)
    expect(r1.copied.files).toBeGreaterThan(3)
    expect(readFileSync(join(h.dir, 'chatmail.toml'), 'utf8')).toMatch(/\[backup\]\npassword = "[A-Za-z0-9_-]{43}"/)
    expect(statSync(join(h.dir, 'chatmail.toml')).mode & 0o777).toBe(0o600)
    expect(await guestShell(h.host, 'stat -c %a /etc/chatmail/backup-password')).toBe('600\n')
    const second = await h.cli(args, 600_000)
    expect(second.code, second.stderr).toBe(0)
    const r2 = JSON.parse(second.stdout)
    expect(r2.filesNew).toBe(0)
    expect(r2.dataAdded).toBeLessThan(64 * 1024)
    expect(r2.copied.bytes).toBeLessThan(r1.copied.bytes / 2)
    before = await manifest(h)
    // a→b (read), b→a, a→c (unread); the fourth waits in the queue.
    expect(before.filter((l) => /\/(cur|new)\//.test(l))).toHaveLength(3)
    expect(before.some((l) => l.startsWith(`${ACCOUNTS.accountsFile} `))).toBe(true)
    // The old host goes away; the new one takes its address.
    await h.stop()
    old = undefined
  }, 1_300_000)

  test('a fresh Debian 13 host refuses a tampered copy, then restores the sound one', async () => {
    expect(backupDir).toBeDefined()
    const f = await startConfiguredHost(NEW)
    fresh = f
    expect(f.host.host).toBe(ip)
    cpSync(join(backupDir, '..', 'chatmail.toml'), join(f.dir, 'chatmail.toml'))
    const restore = (from: string) =>
      f.cli(
        ['restore', ...deployHostArgs(f.host, `root@${ip}`, f.mirror).slice(2), '--from', from, '--yes', '--json'],
        1_400_000,
      )
    // The tampered copy: one byte of the largest pack flipped.
    const tampered = join(f.dir, 'tampered')
    cpSync(backupDir, tampered, { recursive: true })
    const packs = readdirSync(join(tampered, 'data'), { recursive: true, encoding: 'utf8' })
      .map((p) => join(tampered, 'data', p))
      .filter((p) => statSync(p).isFile())
      .sort((x, y) => statSync(y).size - statSync(x).size)
    const bytes = readFileSync(packs[0] as string)
    bytes.writeUInt8((bytes.readUInt8(bytes.length >> 1) ^ 0x01) & 0xff, bytes.length >> 1)
    writeFileSync(packs[0] as string, bytes)
    const refused = await restore(tampered)
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/failed verification .*tampered with; nothing was restored/)
    expect(await guestShell(f.host, `cat ${ACCOUNTS.accountsFile} 2>/dev/null | wc -l`)).toBe('0\n')

    const done = await restore(backupDir)
    expect(done.code, `${done.stderr}\n${done.stdout}`).toBe(0)
    const r = JSON.parse(done.stdout)
    expect(r.doctor).not.toBe('fail')
    expect(r.changedBySecondDeploy).toBe(0)
    // Debian 13's restic reads the repository Debian 12's wrote.
    expect(r.restic).not.toBe(JSON.parse(readFileSync(join(backupDir, '..', 'backup-1.json'), 'utf8')).restic)
    expect(await guestShell(f.host, '. /etc/os-release; echo $VERSION_ID')).toBe('13\n')
    expect(await manifest(f)).toEqual(before)
  }, 3_000_000)

  test('the same passwords log in, every message is there, the held message is delivered, a rerun changes nothing', async () => {
    const f = fresh as ConfiguredHost
    const [a, b, c] = accounts as [Account, Account, Account]
    expect(await inbox(ip, a, 1)).toBe(1)
    expect(await inbox(ip, b, 1)).toBe(1)
    expect(await inbox(ip, c, 1)).toBe(1)
    await guestShell(f.host, 'postsuper -H ALL && postqueue -f')
    expect(await inbox(ip, c, 2)).toBe(2)
    await submit(ip, c, a.email)
    expect(await inbox(ip, a, 2)).toBe(2)
    const again = await f.cli(
      ['restore', ...deployHostArgs(f.host, `root@${ip}`, f.mirror).slice(2), '--from', backupDir, '--yes', '--json'],
      1_400_000,
    )
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).already).toBe(true)
    expect(await inbox(ip, a, 2)).toBe(2)
  }, 1_600_000)
})
