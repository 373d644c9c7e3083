// Account creations per second on a deployed server: a local Debian test host (IP-only, the whole
// stack from `chatmail deploy host`), reached from the runner over the test host's veth. Needs root.
//   npm run build && flock /tmp/chatmail-e2e-bench-accounts-host.lock npx tsx bench/accounts-host.ts [COUNT [CLIENTS]]
// (defaults 400 and 16; BENCH_SUITE=trixie for Debian 13). The deploy raises accounts.max_creations_per_client, as every creation
// here comes from the runner's one address; everything else is as `chatmail init` writes it.
// Each row: COUNT new accounts, CLIENTS at once, each client on a new TLS connection per account
// (one TLS context for all, as a device makes one and keeps it; no session resumed),
// then (for the IMAP rows) the same accounts again. Beside the rate: the server's CPU per creation,
// from systemd's accounting of the units that did the work (dovecot, chatmail-accounts, nginx), and
// what one core of the server would serve at that cost; the client (this process) shares the
// machine's cores with the server, so the rate is below what the server alone would do.
//  0. a warm-up row of first logins (the deploy has just restarted every service);
//  1. POST /new over https (nginx, then chatmail-accounts): how the app signs up from the QR code,
//     then the app's first IMAP login (TLS) with each account /new made;
//  2. IMAP LOGIN over TLS (993), then LOGOUT: an account created by its first login;
//  3. IMAP LOGIN, SELECT INBOX (which makes the mailbox), IDLE, then LOGOUT: what a new device's
//     first session does before it waits for mail.
// Goal (issue 11): >= 200 creations/s.
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { type RequestOptions, request } from 'node:https'
import { join } from 'node:path'
import { createSecureContext } from 'node:tls'
import { startConfiguredHost } from '../test/helpers/deployed-host.js'
import { imapSession } from '../test/helpers/imap-login.js'
import { guestShell } from '../test/helpers/testhost.js'

const COUNT = Number(process.argv[2] ?? 400)
const CLIENTS = Number(process.argv[3] ?? 16)
const UNITS = ['dovecot', 'chatmail-accounts', 'nginx'] as const
type Cpu = Record<(typeof UNITS)[number], number>

const suite = process.env.BENCH_SUITE === 'trixie' ? 'trixie' : 'bookworm'
const release = suite === 'trixie' ? 'Debian 13' : 'Debian 12'
const c = await startConfiguredHost({ name: 'th-acc-110', index: 110, suite, deployArgs: ['--no-doctor'] })
try {
  const path = join(c.dir, 'chatmail.toml')
  const line = /^#? ?max_creations_per_client = .*$/m
  const toml = readFileSync(path, 'utf8')
  if (!line.test(toml)) throw new Error('chatmail init wrote no max_creations_per_client line')
  writeFileSync(path, toml.replace(line, 'max_creations_per_client = 1000000'))
  const deploy = await c.deploy()
  if (deploy.code !== 0) throw new Error(`chatmail deploy host failed (${deploy.code}): ${deploy.stderr.slice(-2000)}`)
  const ip = c.host.host

  /** CPU seconds each unit has used since it started (systemd's cgroup accounting). */
  const cpu = async (): Promise<Cpu> => {
    const out = await guestShell(
      c.host,
      `systemctl show -p CPUUsageNSec --value ${UNITS.map((u) => `${u}.service`).join(' ')}`,
    )
    const ns = out
      .split('\n')
      .filter((l) => l.trim())
      .map(Number)
    if (ns.length !== UNITS.length || ns.some((n) => !Number.isFinite(n)))
      throw new Error(`no CPU accounting for ${UNITS.join(', ')}: ${out}`)
    return Object.fromEntries(UNITS.map((u, i) => [u, (ns[i] as number) / 1e9])) as Cpu
  }

  /** CLIENTS at once run `one` for each index; the rate and the server's CPU per call. */
  const measure = async (label: string, one: (i: number) => Promise<void>) => {
    // Settle: the deploy's and the last row's work must not count.
    await new Promise((r) => setTimeout(r, 1000))
    const before = await cpu()
    let next = 0
    const client0 = process.cpuUsage()
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < COUNT) await one(next++)
      }),
    )
    const seconds = (performance.now() - t0) / 1000
    const client = process.cpuUsage(client0)
    await new Promise((r) => setTimeout(r, 1000))
    const after = await cpu()
    const per = UNITS.map((u) => [u, ((after[u] - before[u]) * 1000) / COUNT] as const).filter(([, ms]) => ms >= 0.05)
    const total = per.reduce((s, [, ms]) => s + ms, 0)
    console.log(
      `${label}: ${(COUNT / seconds).toFixed(0)}/s; server CPU ${total.toFixed(1)} ms each (${per
        .map(([u, ms]) => `${u} ${ms.toFixed(1)}`)
        .join(', ')}), ${(1000 / total).toFixed(0)}/s per server core; the client's CPU ${(
        (client.user + client.system) / 1000 / COUNT
      ).toFixed(1)} ms each`,
    )
  }

  // One TLS context for all connections, as each device makes its own once: node would otherwise
  // make one per connection (about 0.5 ms of the client's CPU each), which no device pays. No
  // session is resumed: each connection makes a full handshake, as a new device's first does.
  const tls = createSecureContext({})
  const signUp = (): Promise<{ email: string; password: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        // secureContext reaches tls.connect, though https' types leave it out.
        {
          host: ip,
          port: 443,
          path: '/new',
          method: 'POST',
          rejectUnauthorized: false,
          agent: false,
          secureContext: tls,
        } as RequestOptions,
        (res) => {
          let body = ''
          res.on('data', (d: Buffer) => {
            body += d.toString()
          })
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`POST /new: ${res.statusCode} ${body.slice(0, 200)}`))
            resolve(JSON.parse(body) as { email: string; password: string })
          })
        },
      )
      req.on('error', reject)
      req.end()
    })
  const login = async (user: string, password: string, select: boolean) => {
    const s = await imapSession(993, user, password, ip, tls, select)
    s.logout()
    if (!s.reply.startsWith('a OK')) throw new Error(`${user}: ${s.reply}`)
  }
  // Addresses as chatmail's rules want them (9 characters), a new letter for each row.
  const accounts = (letter: string) =>
    Array.from({ length: COUNT }, (_, i) => ({
      user: `${letter}${String(i).padStart(8, '0')}@[${ip}]`,
      password: randomBytes(16).toString('base64url'),
    }))

  console.log(`deployed ${ip} (${release} test host); ${COUNT} accounts a row, ${CLIENTS} clients at once`)
  // What one password hash costs in the host's node (Debian's), which chatmail-accounts runs on.
  const hash = await guestShell(
    c.host,
    `node -e 'const {pbkdf2Sync: p} = require("node:crypto"); const h = () => p("password-of-1", "saltsaltsaltsalt", 10000, 20, "sha1"); for (let i = 0; i < 20; i++) h(); const t = performance.now(); for (let i = 0; i < 100; i++) h(); console.log(process.version, ((performance.now() - t) / 100).toFixed(2))'`,
  )
  const [nodeVersion, hashMs] = hash.trim().split(' ')
  console.log(`one PBKDF2 hash of 10000 rounds in the host's node ${nodeVersion}: ${hashMs} ms (one thread)`)
  // The deploy has just restarted everything: dovecot has no imap process to reuse yet and node
  // has compiled nothing. A server that has been up a minute is warm; this row shows the difference.
  const warm = accounts('a')
  await measure('warm-up: IMAP LOGIN (TLS), new accounts, right after the deploy', (i) =>
    login(warm[i]!.user, warm[i]!.password, false),
  )
  const made: { email: string; password: string }[] = []
  await measure('POST /new (https), a new account each', async () => {
    made.push(await signUp())
  })
  await measure("IMAP LOGIN (TLS) with each /new account: the app's first login after it", (i) =>
    login(made[i]!.email, made[i]!.password, false),
  )
  for (const [letter, select, what] of [
    ['b', false, 'IMAP LOGIN (TLS)'],
    ['c', true, 'IMAP LOGIN, SELECT INBOX, IDLE (TLS)'],
  ] as const) {
    const a = accounts(letter)
    await measure(`${what}, new accounts (first logins)`, (i) => login(a[i]!.user, a[i]!.password, select))
    await measure(`${what}, the same accounts again`, (i) => login(a[i]!.user, a[i]!.password, select))
  }
} finally {
  await c.stop()
}
