/**
 * Account creations per second: first logins of new addresses against a real dovecot whose
 * passdb/userdb is chatmail-accounts (the built service, the deployed PBKDF2 cost of 10000 rounds).
 *   npx tsx bench/accounts.ts [COUNT [IMAP_COUNT [CLIENTS [HELD]]]]     (defaults 1000, 400, 16, 1100)
 * Two ways in, each with new addresses, then the same addresses again (existing accounts):
 *  - dovecot's auth: AUTH PLAIN on its auth-client socket, 32 in flight (what each IMAP LOGIN and
 *    each SMTP AUTH of postfix's submission asks dovecot) — the creation itself;
 *  - IMAP LOGIN over loopback from CLIENTS parallel clients, plain and over TLS (993, as Delta Chat
 *    connects): the above plus imap-login and the imap process of the session. Each client logs
 *    in, LOGOUTs and takes the next address; then over TLS once more, each session going on as a
 *    new device's first one does (SELECT INBOX, which makes the mailbox, and IDLE) before LOGOUT.
 *    Beside each rate, the server's CPU per login (dovecot's processes, ended ones included, and
 *    chatmail-accounts), which the clients' share of this machine's cores does not blur;
 *  - then HELD new devices over TLS, each kept open as Delta Chat keeps it: LOGIN, SELECT INBOX,
 *    IDLE, all held until the last is in (creations/s; no imap process can be reused), then where
 *    the sessions are (imap processes, imap-hibernate) and the memory of dovecot's processes (sum
 *    of RSS and of PSS, which shares a page among the processes mapping it), at once and again
 *    after the template's imap_hibernate_timeout, and once more when the freed imap processes
 *    have ended (a minute unused: dovecot's idle_kill).
 * Run twice: with dovecot's default login and session processes, and with the settings of our
 * Dovecot 2.3 template's login and session section (templates/dovecot/dovecot.conf; the same in
 * 2.4's grammar is deployed on Debian 13; BENCH_DOVECOT_SERVICES replaces them, e.g. to try
 * `service imap { process_min_avail = 32 }` besides; BENCH_TEMPLATE_ONLY=1 skips dovecot's defaults).
 * Hibernation needs an inotify instance per session in IDLE: the kernel's default of 128 per user
 * (a deployed server raises it, /etc/sysctl.d/60-chatmail-dovecot.conf) caps it here, and the bench
 * says how many sessions hibernated.
 * Also prints what one PBKDF2 hash costs here. Goal (issue 11): >= 200 creations/s.
 */
import { execFileSync } from 'node:child_process'
import { pbkdf2Sync } from 'node:crypto'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dovecotAuthBlocks, startAccountsService } from '../test/helpers/accounts.js'
import { type Dovecot, sessionPlaces, startDovecot, templateServices } from '../test/helpers/dovecot.js'
import { imapSession } from '../test/helpers/imap-login.js'
import { cpuSeconds, procStat, USER_HZ } from '../test/helpers/proc.js'

const COUNT = Number(process.argv[2] ?? 1000)
const IMAP_COUNT = Number(process.argv[3] ?? 400)
const CLIENTS = Number(process.argv[4] ?? 16)
const HELD = Number(process.argv[5] ?? 1100)
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

/**
 * CPU seconds the server side has used so far: dovecot's master, every process it runs now, and
 * the ones it has reaped (the master's children times), plus chatmail-accounts (all its threads).
 * Read between runs, when dovecot's processes are idle and none is ending.
 */
function serverCpu(d: Dovecot, accountsPid: number): { dovecot: number; accounts: number } {
  const master = readFileSync(join(d.dir, 'run', 'master.pid'), 'utf8').trim()
  const m = procStat(master)
  // The master's own times and those of the children it has reaped (cutime, cstime).
  let dovecot = cpuSeconds(master) + (Number(m[13]) + Number(m[14])) / USER_HZ
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (procStat(pid)[1] === master) dovecot += cpuSeconds(pid)
    } catch {
      // ended meanwhile
    }
  }
  return { dovecot, accounts: cpuSeconds(accountsPid) }
}

/**
 * CLIENTS parallel clients each log in (over TLS with `tls`), and with `select` go on as Delta
 * Chat's first login does (SELECT INBOX, which makes the new account's mailbox, then IDLE), then
 * LOGOUT and take the next address: the seconds, and the server's CPU seconds per login.
 */
async function imapRun(
  d: Dovecot,
  accountsPid: number,
  port: number,
  logins: Login[],
  tls: boolean,
  select = false,
): Promise<{ seconds: number; cpu: { dovecot: number; accounts: number } }> {
  let next = 0
  const before = serverCpu(d, accountsPid)
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < logins.length) {
        const [user, password] = logins[next++] as Login
        const session = await imapSession(port, user, password, '127.0.0.1', tls, select)
        session.logout()
        if (!session.reply.startsWith('a OK')) throw new Error(`${user}: ${session.reply}`)
      }
    }),
  )
  const s = seconds(t0)
  // Let the last sessions end before the server's CPU is read again.
  await new Promise((r) => setTimeout(r, 500))
  const after = serverCpu(d, accountsPid)
  return {
    seconds: s,
    cpu: {
      dovecot: (after.dovecot - before.dovecot) / logins.length,
      accounts: (after.accounts - before.accounts) / logins.length,
    },
  }
}

/**
 * As imapRun over TLS, but each session SELECTs INBOX and IDLEs, and stays open (as Delta Chat keeps
 * its IMAP connection): the seconds until all are in, or how many were in when dovecot dropped one;
 * `open` ends them.
 */
async function imapHeld(
  port: number,
  logins: Login[],
): Promise<{ result: number | { held: number; error: string }; open: (() => void)[] }> {
  let next = 0
  const open: (() => void)[] = []
  const t0 = process.hrtime.bigint()
  try {
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < logins.length) {
          const [user, password] = logins[next++] as Login
          const session = await imapSession(port, user, password, '127.0.0.1', true, true)
          open.push(session.logout)
          if (!session.reply.startsWith('a OK')) throw new Error(`${user}: ${session.reply}`)
        }
      }),
    )
    return { result: seconds(t0), open }
  } catch (err) {
    return { result: { held: open.length, error: (err as Error).message }, open }
  }
}

/** The sum of RSS and of PSS (MB) of a test dovecot's master and every process it started. */
function dovecotMemory(d: Dovecot): { processes: number; rss: number; pss: number } {
  const conf = join(d.dir, 'dovecot.conf')
  const status = execFileSync('doveadm', ['-c', conf, '-f', 'tab', 'process', 'status'], { encoding: 'utf8' })
  const pids = status
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[1] as string)
  pids.push(readFileSync(join(d.dir, 'run', 'master.pid'), 'utf8').trim())
  let rss = 0
  let pss = 0
  for (const pid of new Set(pids)) {
    try {
      const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
      rss += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0)
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0)
    } catch {
      // ended meanwhile
    }
  }
  return { processes: new Set(pids).size, rss: rss / 1024, pss: pss / 1024 }
}

/** Where the held sessions are, and what dovecot's processes take: one line. */
function heldState(d: Dovecot): string {
  const conf = join(d.dir, 'dovecot.conf')
  const doveadm = (...args: string[]) => execFileSync('doveadm', ['-c', conf, ...args], { encoding: 'utf8' })
  const p = sessionPlaces(
    doveadm('-f', 'tab', 'who', '-1'),
    doveadm('-f', 'tab', 'process', 'status', 'imap', 'imap-hibernate'),
  )
  const m = dovecotMemory(d)
  return `${p.inImap + p.hibernated} sessions held (${p.inImap} in imap processes, ${p.hibernated} hibernated); ${m.processes} dovecot processes, RSS ${m.rss.toFixed(0)} MB, PSS ${m.pss.toFixed(0)} MB`
}

const logins = (prefix: string, count = COUNT): Login[] =>
  Array.from({ length: count }, (_, i) => [`${prefix}${String(i).padStart(8, '0')}@${DOMAIN}`, `password-of-${i}`])

const t0 = process.hrtime.bigint()
for (let i = 0; i < 20; i++) pbkdf2Sync('password-of-1', 'saltsaltsaltsalt', ROUNDS, 20, 'sha1')
console.log(
  `one PBKDF2-HMAC-SHA1 hash of ${ROUNDS} rounds: ${((seconds(t0) * 1000) / 20).toFixed(1)} ms (node, one thread)`,
)

console.log(
  `inotify instances per user here: ${readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8').trim()} (a session in IDLE holds one, and takes a second for a moment to hibernate)`,
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
/** The server's CPU per login, and the logins per second one core of it would serve at that cost. */
const cpuText = (c: { dovecot: number; accounts: number }) =>
  `server CPU ${((c.dovecot + c.accounts) * 1000).toFixed(1)} ms each: dovecot ${(c.dovecot * 1000).toFixed(1)}, chatmail-accounts ${(c.accounts * 1000).toFixed(1)}; ${(1 / (c.dovecot + c.accounts)).toFixed(0)}/s per core`
const variants: [label: string, config: string][] = [
  ["dovecot's defaults (a new imap-login and imap process per connection)", ''],
  ['our template', process.env.BENCH_DOVECOT_SERVICES ?? templateServices()],
].slice(process.env.BENCH_TEMPLATE_ONLY ? 1 : 0) as [string, string][]
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
      const runs: [label: string, tls: boolean, select: boolean][] = [
        ['plain, LOGIN', false, false],
        ['TLS (993), LOGIN', true, false],
        ['TLS (993), LOGIN, SELECT INBOX, IDLE', true, true],
      ]
      for (const [r, [what, tls, select]] of runs.entries()) {
        const b = logins(`${'ptsqur'[3 * v + r]}`, IMAP_COUNT)
        const port = tls ? dovecot.imapsPort : dovecot.imapPort
        const created = await imapRun(dovecot, svc.pid, port, b, tls, select)
        const again = await imapRun(dovecot, svc.pid, port, b, tls, select)
        console.log(
          `  ${what}: ${IMAP_COUNT} creations ${rate(created.seconds, IMAP_COUNT)} (${cpuText(created.cpu)}), existing accounts ${rate(again.seconds, IMAP_COUNT)} (${cpuText(again.cpu)})`,
        )
      }
      // HELD 0: no devices to keep open, and nothing to wait for.
      if (HELD === 0) continue
      const { result: held, open } = await imapHeld(dovecot.imapsPort, logins(['h', 'k'][v] as string, HELD))
      try {
        console.log(
          `  TLS, ${HELD} new devices kept open in IDLE until all are in: ${
            typeof held === 'number'
              ? `creations ${rate(held, HELD)}`
              : `a session failed with ${held.held} open (${held.error})`
          }`,
        )
        console.log(`    at once: ${heldState(dovecot)}`)
        const timeout = /^imap_hibernate_timeout = (\d+)s$/m.exec(services)?.[1]
        if (timeout) {
          await new Promise((r) => setTimeout(r, (Number(timeout) + 5) * 1000))
          console.log(`    ${Number(timeout) + 5} s later: ${heldState(dovecot)}`)
          // The freed imap processes wait to be reused; idle for a minute (idle_kill), they end.
          await new Promise((r) => setTimeout(r, 65_000))
          console.log(`    ${Number(timeout) + 70} s later: ${heldState(dovecot)}`)
        }
      } finally {
        for (const logout of open) logout()
      }
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
