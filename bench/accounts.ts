/**
 * Account creations per second: first logins of new addresses against a real dovecot whose
 * passdb/userdb is chatmail-accounts (the built service, the deployed PBKDF2 cost of 10000 rounds).
 *   npx tsx bench/accounts.ts [COUNT [IMAP_COUNT [CLIENTS]]]     (defaults 1000, 400 and 16)
 * Two ways in, each with new addresses, then the same addresses again (existing accounts):
 *  - dovecot's auth: AUTH PLAIN on its auth-client socket, 32 in flight (what each IMAP LOGIN and
 *    each SMTP AUTH of postfix's submission asks dovecot) — the creation itself;
 *  - IMAP LOGIN over loopback from CLIENTS parallel clients, plain and over TLS (993, as Delta Chat
 *    connects): the above plus imap-login and the imap process of the session. Each client logs
 *    in, LOGOUTs and takes the next address; then over TLS with every session kept open until all
 *    are in (Delta Chat keeps its connection: no imap process can be reused). Run twice: with dovecot's default login and session
 *    processes, and with the `service imap-login` / `service imap` settings of our Dovecot 2.3
 *    template (templates/dovecot/dovecot.conf; the same in 2.4's grammar is deployed on Debian 13).
 * Also prints what one PBKDF2 hash costs here. Goal (issue 11): >= 200 creations/s.
 */
import { pbkdf2Sync } from 'node:crypto'
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dovecotAuthBlocks, startAccountsService } from '../test/helpers/accounts.js'
import { startDovecot, templateServices } from '../test/helpers/dovecot.js'
import { imapLogin, imapSession } from '../test/helpers/imap-login.js'

const COUNT = Number(process.argv[2] ?? 1000)
const IMAP_COUNT = Number(process.argv[3] ?? 400)
const CLIENTS = Number(process.argv[4] ?? 16)
const ROUNDS = 10_000
const DOMAIN = 'bench.example.org'

type Login = [user: string, password: string]
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9

/** AUTH PLAIN for each login on dovecot's auth-client socket: `conns` connections, `inflight` requests each. */
async function authRun(socket: string, logins: Login[], conns = 4, inflight = 8): Promise<number> {
  let next = 0
  const t0 = process.hrtime.bigint()
  const one = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const s = connect(socket)
      let buf = ''
      let id = 0
      let pending = 0
      let ready = false
      const send = () => {
        while (ready && pending < inflight && next < logins.length) {
          const [user, password] = logins[next++] as Login
          pending++
          const resp = Buffer.from(`\0${user}\0${password}`).toString('base64')
          s.write(`AUTH\t${++id}\tPLAIN\tservice=imap\tsecured\tnologin\tresp=${resp}\n`)
        }
        if (ready && pending === 0 && next >= logins.length) {
          s.end()
          resolve()
        }
      }
      s.on('error', reject)
      s.write(`VERSION\t1\t2\nCPID\t${process.pid * 10 + n}\n`)
      s.on('data', (d) => {
        buf += d.toString()
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i)
          buf = buf.slice(i + 1)
          if (line === 'DONE') ready = true
          else if (line.startsWith('FAIL\t')) reject(new Error(`auth refused a login: ${line}`))
          else if (line.startsWith('OK\t')) pending--
        }
        send()
      })
    })
  await Promise.all(Array.from({ length: conns }, (_, n) => one(n)))
  return seconds(t0)
}

async function imapRun(port: number, logins: Login[], tls: boolean): Promise<number> {
  let next = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < logins.length) {
        const [user, password] = logins[next++] as Login
        const reply = await imapLogin(port, user, password, '127.0.0.1', tls)
        if (!reply.startsWith('a OK')) throw new Error(`${user}: ${reply}`)
      }
    }),
  )
  return seconds(t0)
}

/**
 * As imapRun over TLS, but every session stays open until all have logged in (as Delta Chat keeps
 * its IMAP connection): the seconds, or how many sessions were in when dovecot dropped one.
 */
async function imapHeld(port: number, logins: Login[]): Promise<number | { held: number; error: string }> {
  let next = 0
  const open: (() => void)[] = []
  const t0 = process.hrtime.bigint()
  try {
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < logins.length) {
          const [user, password] = logins[next++] as Login
          const session = await imapSession(port, user, password, '127.0.0.1', true)
          open.push(session.logout)
          if (!session.reply.startsWith('a OK')) throw new Error(`${user}: ${session.reply}`)
        }
      }),
    )
    return seconds(t0)
  } catch (err) {
    return { held: open.length, error: (err as Error).message }
  } finally {
    for (const logout of open) logout()
  }
}

const logins = (prefix: string, count = COUNT): Login[] =>
  Array.from({ length: count }, (_, i) => [`${prefix}${String(i).padStart(8, '0')}@${DOMAIN}`, `password-of-${i}`])

const t0 = process.hrtime.bigint()
for (let i = 0; i < 20; i++) pbkdf2Sync('password-of-1', 'saltsaltsaltsalt', ROUNDS, 20, 'sha1')
console.log(
  `one PBKDF2-HMAC-SHA1 hash of ${ROUNDS} rounds: ${((seconds(t0) * 1000) / 20).toFixed(1)} ms (node, one thread)`,
)

const dataDir = mkdtempSync(join(tmpdir(), 'bench-accounts-data-'))
const mailRoot = mkdtempSync(join(tmpdir(), 'bench-accounts-mail-'))
const svc = await startAccountsService({
  domain: DOMAIN,
  mailRoot,
  dataDir,
  extra: { pbkdf2_rounds: String(ROUNDS), max_creations_per_client: '1000000' },
})
const rate = (s: number, count = COUNT) => `${(count / s).toFixed(0)}/s`
const variants: [label: string, config: string][] = [
  ["dovecot's defaults (a new imap-login and imap process per connection)", ''],
  ['our template', process.env.BENCH_DOVECOT_SERVICES ?? templateServices()],
]
try {
  for (const [v, [label, services]] of variants.entries()) {
    const dovecot = await startDovecot({
      auth: dovecotAuthBlocks(svc.dictSocket, svc.dir),
      extraConfig: `auth_failure_delay = 0\n${services}`,
    })
    const owner = statSync(dovecot.homeRoot)
    chownSync(mailRoot, owner.uid, owner.gid)
    try {
      if (v === 0) {
        const socket = join(dovecot.dir, 'run', 'auth-client')
        const a = logins('a')
        const created = await authRun(socket, a)
        const again = await authRun(socket, a)
        console.log(
          `dovecot auth (AUTH PLAIN, 32 in flight): ${COUNT} creations ${rate(created)}, existing accounts ${rate(again)}`,
        )
      }
      console.log(`IMAP LOGIN, ${CLIENTS} clients at once, ${label}:${services ? `\n${services}` : ''}`)
      for (const tls of [false, true]) {
        const b = logins(['p', 't', 'q', 'u'][2 * v + Number(tls)] as string, IMAP_COUNT)
        const created = await imapRun(tls ? dovecot.imapsPort : dovecot.imapPort, b, tls)
        const again = await imapRun(tls ? dovecot.imapsPort : dovecot.imapPort, b, tls)
        console.log(
          `  ${tls ? 'TLS (993)' : 'plain    '}: ${IMAP_COUNT} creations ${rate(created, IMAP_COUNT)}, existing accounts ${rate(again, IMAP_COUNT)}`,
        )
      }
      const held = await imapHeld(dovecot.imapsPort, logins(['h', 'k'][v] as string, IMAP_COUNT))
      console.log(
        `  TLS, sessions kept open until all ${IMAP_COUNT} are in: ${
          typeof held === 'number'
            ? `creations ${rate(held, IMAP_COUNT)}`
            : `a session failed with ${held.held} open (${held.error})`
        }`,
      )
      // Let dovecot see the held sessions end before it is stopped.
      await new Promise((r) => setTimeout(r, 1000))
    } catch (err) {
      console.error(`${(err as Error).message}\n${dovecot.logs().slice(-1500)}\n${svc.logs().slice(-1500)}`)
      process.exitCode = 1
    } finally {
      await dovecot.stop()
    }
  }
} finally {
  await svc.stop()
  rmSync(dataDir, { recursive: true, force: true })
  rmSync(mailRoot, { recursive: true, force: true })
}
