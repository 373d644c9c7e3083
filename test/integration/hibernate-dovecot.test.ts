/**
 * IMAP hibernation with our template's login and session settings (templates/dovecot/dovecot.conf:
 * `service imap`, `service auth`, `imap_hibernate_timeout`) on a real dovecot over loopback:
 * sessions in IDLE move into imap-hibernate and free their imap processes, and a message
 * delivered to the mailbox wakes each of them with the EXISTS that Delta Chat waits for.
 * The timeout is 1 s here instead of the template's 30 s, to keep the test short.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { ImapFlow } from 'imapflow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Dovecot, sessionPlaces, startDovecot, templateServices } from '../helpers/dovecot.js'
import { imapsClient } from '../helpers/imap-login.js'

const SESSIONS = 4

describe('IMAP hibernation with our template', () => {
  let dovecot: Dovecot
  let conf: string
  const clients: ImapFlow[] = []
  const doveadm = (...args: string[]) => execFileSync('doveadm', ['-c', conf, ...args], { encoding: 'utf8' })
  const places = () =>
    sessionPlaces(
      doveadm('-f', 'tab', 'who', '-1'),
      doveadm('-f', 'tab', 'process', 'status', 'imap', 'imap-hibernate'),
    )

  beforeAll(async () => {
    dovecot = await startDovecot({ extraConfig: `${templateServices()}\nimap_hibernate_timeout = 1s` })
    conf = join(dovecot.dir, 'dovecot.conf')
  }, 60_000)

  afterAll(async () => {
    for (const c of clients) await c.logout().catch(() => {})
    await dovecot?.stop()
  })

  it("the template's settings raise no warning from doveconf", () => {
    const out = execFileSync('sh', ['-c', 'doveconf -c "$1" -n 2>&1 >/dev/null', 'sh', conf], { encoding: 'utf8' })
    expect(out).toBe('')
    const value = (name: string) => execFileSync('doveconf', ['-c', conf, '-h', name], { encoding: 'utf8' }).trim()
    // auth's own limit and imap's process limit within it; imap-login and imap-hibernate keep
    // dovecot's default, no raised default_client_limit.
    expect([value('service/auth/client_limit'), value('service/imap/process_limit')]).toEqual(['2000', '1700'])
    expect(value('default_client_limit')).toBe('1000')
  })

  it('sessions in IDLE are hibernated, free their imap processes, and new mail wakes each with EXISTS', async () => {
    const exists: number[] = []
    for (let i = 0; i < SESSIONS; i++) {
      const c = await imapsClient(dovecot.host, dovecot.user, dovecot.password, dovecot.imapsPort)
      await c.mailboxOpen('INBOX')
      exists.push(0)
      c.on('exists', (e: { count: number }) => {
        exists[i] = e.count
      })
      void c.idle()
      clients.push(c)
    }
    let now = places()
    for (let t = 0; t < 100 && now.hibernated < SESSIONS; t++) {
      await new Promise((r) => setTimeout(r, 200))
      now = places()
    }
    expect(now, dovecot.logs().slice(-2000)).toEqual({ hibernated: SESSIONS, inImap: 0, busyImap: 0 })

    execFileSync('doveadm', ['-c', conf, 'save', '-u', dovecot.user], { input: 'Subject: push\r\n\r\nwake up\r\n' })
    for (let t = 0; t < 100 && exists.some((n) => n < 1); t++) await new Promise((r) => setTimeout(r, 200))
    expect(exists, dovecot.logs().slice(-2000)).toEqual(Array(SESSIONS).fill(1))
    // Woken, each session still works: it sees the message.
    const last = clients.at(-1) as ImapFlow
    const msg = await last.fetchOne('*', { envelope: true })
    expect(msg ? msg.envelope?.subject : undefined).toBe('push')
  }, 60_000)
})
