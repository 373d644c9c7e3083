/**
 * The daily expiry cut off half-way (issue 12): the real chatmail-accounts service and its
 * `expire` command on loopback sockets and a mail root in a temp dir. The service has removed an
 * inactive account and handed it out, but the command died before deleting its mailbox: the
 * account's address cannot be made again meanwhile, and the next run (after a restart of the
 * service, even) deletes the mailbox and frees the address; a run with nothing to do changes nothing.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AccountsService, expireCommand, makeMailbox, startAccountsService } from '../helpers/accounts.js'

const DOMAIN = 'chat.example.org'
const DAY = 86400

function control(socket: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(socket)
    let buf = ''
    s.on('error', reject)
    s.on('data', (d) => {
      buf += d.toString()
      if (buf.includes('\n')) {
        s.destroy()
        resolve(JSON.parse(buf))
      }
    })
    s.write(`${JSON.stringify(request)}\n`)
  })
}

describe('the expiry resumes after being cut off', () => {
  let svc: AccountsService
  let dataDir: string
  let mailRoot: string
  const now = Math.floor(Date.now() / 1000)
  const mailbox = (local: string) => join(mailRoot, DOMAIN, local)

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chatmail-expire-data-'))
    mailRoot = mkdtempSync(join(tmpdir(), 'chatmail-expire-mail-'))
    writeFileSync(
      join(dataDir, 'accounts'),
      `oldnologi@${DOMAIN}\t{PBKDF2}x\t${now - 100 * DAY}\nstillhere@${DOMAIN}\t{PBKDF2}x\t${now - DAY}\n`,
      { mode: 0o600 },
    )
    for (const local of ['oldnologi', 'stillhere']) makeMailbox(mailbox(local))
    svc = await startAccountsService({ domain: DOMAIN, mailRoot, dataDir, extra: { delete_inactive_after: '90d' } })
  }, 60_000)

  afterAll(async () => {
    await svc?.stop()
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(mailRoot, { recursive: true, force: true })
  })

  it('the service hands out the inactive account; the command dies before deleting its mailbox', async () => {
    const answer = await control(svc.controlSocket, { op: 'expire' })
    expect(answer).toEqual({
      ok: true,
      expired: [{ address: `oldnologi@${DOMAIN}`, home: mailbox('oldnologi') }],
    })
    expect(readFileSync(join(dataDir, 'accounts'), 'utf8')).not.toContain('oldnologi')
    expect(readFileSync(join(dataDir, 'expiring'), 'utf8')).toBe(`oldnologi@${DOMAIN}\n`)
    expect(existsSync(mailbox('oldnologi'))).toBe(true)
  })

  it('after a restart of the service, the next run deletes the mailbox and frees the address', async () => {
    await svc.restart()
    const r = await expireCommand(svc.configPath)
    expect(r.stderr).toMatch(/expiry: 1 inactive account\(s\) deleted, 0 old message\(s\)/)
    expect(r.code).toBe(0)
    expect(existsSync(mailbox('oldnologi'))).toBe(false)
    expect(existsSync(join(mailbox('stillhere'), 'cur', '1.host:2,S'))).toBe(true)
    expect(readFileSync(join(dataDir, 'expiring'), 'utf8')).toBe('')
    expect(readFileSync(join(dataDir, 'accounts'), 'utf8')).toBe(`stillhere@${DOMAIN}\t{PBKDF2}x\t${now - DAY}\n`)
  })

  it('a run with nothing to do changes nothing', async () => {
    const r = await expireCommand(svc.configPath)
    expect(r.stderr).toMatch(/expiry: 0 inactive account\(s\) deleted, 0 old message\(s\) in 0 mailbox/)
    expect(r.code).toBe(0)
    expect(existsSync(join(mailbox('stillhere'), 'cur', '1.host:2,S'))).toBe(true)
  })
})
