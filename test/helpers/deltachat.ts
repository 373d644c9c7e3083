/**
 * The REAL Delta Chat core (`deltachat-rpc-server` from @deltachat/stdio-rpc-server-linux-x64,
 * driven with @deltachat/jsonrpc-client), FENCED so it reaches nothing but the test hosts:
 *
 *   const fence = await createFence({ name: 'dc-e2e', index: 81, hosts: [{ ip: host.host, names: [host.domain] }] })
 *   const core = await startCore(fence)
 *   const id = await core.rpc.addAccount()
 *   ...
 *   await core.close(); await fence.close()
 *
 * The fence is a network namespace made for the test (`cmdc-NAME`): a veth pair to the runner
 * (runner 10.213.INDEX.1, namespace 10.213.INDEX.2, a /30 in the caller's test-host range), a
 * route to each allowed test host and no default route (any other address: "network
 * unreachable" at once), an OUTPUT filter in the namespace and FORWARD/INPUT rules on the
 * runner that drop everything else. DNS: a dnsmasq on 127.0.0.1 inside the namespace answers
 * the test hosts' names and NXDOMAIN for every other name (core is static musl: an unanswered
 * query costs it 5 s), and the namespace's /etc/resolv.conf and /etc/hosts point only there.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type DcEvent, type RawClient, StdioDeltaChat, type T } from '@deltachat/jsonrpc-client'
import { qrSvg } from '../../src/signup/links.js'
import { type AllocateResult, allocate, TurnError } from '../../src/turn/client.js'
import { type DeployedHost, type DeployedHostOptions, startDeployedHost } from './deployed-host.js'
import { testHostSkipReason } from './testhost.js'

const run = promisify(execFile)

export const CORE_BIN = fileURLToPath(
  new URL('../../node_modules/@deltachat/stdio-rpc-server-linux-x64/deltachat-rpc-server', import.meta.url),
)
const DNSMASQ = '/usr/sbin/dnsmasq'

/** Why the fenced core cannot run here, or undefined when it can. */
export function coreSkipReason(): string | undefined {
  const host = testHostSkipReason()
  if (host) return host
  if (process.arch !== 'x64') return 'the core binary in the devDependencies is linux-x64 only'
  if (!existsSync(CORE_BIN)) return `missing ${CORE_BIN} (npm install)`
  if (!existsSync(DNSMASQ)) return 'missing dnsmasq (run: bash scripts/test-deps.sh)'
  return undefined
}

export interface FenceHost {
  ip: string
  /** Names the namespace's resolver answers with ip (e.g. the host's domain). */
  names?: string[]
}

export interface FenceOptions {
  /** Short name: the namespace is cmdc-NAME. */
  name: string
  /** 10.213.INDEX.0/30 between runner and namespace; take it from your own test-host range. */
  index: number
  /** The only destinations the core may reach. */
  hosts: FenceHost[]
}

export interface Fence {
  netns: string
  /** The namespace's own address and the runner's end of the veth. */
  ip: string
  runnerIp: string
  hosts: FenceHost[]
  /** Runs a command inside the namespace (for the fence proof); resolves with its output. */
  exec(cmd: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>
  close(): Promise<void>
}

const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: 30_000 })
  return stdout
}

/** Removes every runner rule carrying the tag, the veth, the namespace and its /etc/netns files. */
async function teardown(netns: string, veth: string, tag: string): Promise<void> {
  for (const table of ['filter', 'nat']) {
    const rules = await sh('iptables-save', ['-t', table]).catch(() => '')
    for (const line of rules.split('\n')) {
      if (!line.startsWith('-A ') || !line.includes(tag)) continue
      // iptables-save quotes the comment; re-split it the way the shell would.
      const args = (line.slice(3).match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"(.*)"$/, '$1'))
      await run('iptables', ['-t', table, '-D', ...args]).catch(() => {})
    }
  }
  await run('ip', ['link', 'del', veth]).catch(() => {})
  await run('ip', ['netns', 'del', netns]).catch(() => {})
  rmSync(`/etc/netns/${netns}`, { recursive: true, force: true })
  rmSync(`/run/chatmail-dc-fence/${netns.slice('cmdc-'.length)}`, { recursive: true, force: true })
}

export async function createFence(opts: FenceOptions): Promise<Fence> {
  if (!/^[a-z0-9][a-z0-9-]{0,9}$/.test(opts.name)) throw new Error(`fence name too long or not lowercase: ${opts.name}`)
  if (!Number.isInteger(opts.index) || opts.index < 1 || opts.index > 249) throw new Error('fence index: 1..249')
  for (const h of opts.hosts) if (!ipv4.test(h.ip)) throw new Error(`fence host must be an IPv4 address: ${h.ip}`)
  const netns = `cmdc-${opts.name}`
  const veth = `cmdc${opts.index}`
  const tag = `chatmail-dc-fence:${opts.name}`
  const runnerIp = `10.213.${opts.index}.1`
  const ip = `10.213.${opts.index}.2`
  await teardown(netns, veth, tag) // leftovers of a crashed run

  const ipn = (...a: string[]) => sh('ip', ['-n', netns, ...a])
  await sh('ip', ['netns', 'add', netns])
  await sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}g`])
  await sh('ip', ['link', 'set', `${veth}g`, 'netns', netns])
  await ipn('link', 'set', `${veth}g`, 'name', 'eth0')
  await sh('ip', ['addr', 'add', `${runnerIp}/30`, 'dev', veth])
  await sh('ip', ['link', 'set', veth, 'up'])
  await ipn('link', 'set', 'lo', 'up')
  await ipn('addr', 'add', `${ip}/30`, 'dev', 'eth0')
  await ipn('link', 'set', 'eth0', 'up')
  // A route to each test host, and nothing else: no default route, no IPv6 address.
  for (const h of opts.hosts) await ipn('route', 'add', `${h.ip}/32`, 'via', runnerIp)
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']).catch(() => {})

  // Second layer, in the namespace: loopback and the test hosts; everything else rejected at once.
  const nsRule = (...a: string[]) => sh('ip', ['netns', 'exec', netns, 'iptables', ...a])
  await nsRule('-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT')
  for (const h of opts.hosts) await nsRule('-A', 'OUTPUT', '-d', `${h.ip}/32`, '-j', 'ACCEPT')
  await nsRule('-A', 'OUTPUT', '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset')
  await nsRule('-A', 'OUTPUT', '-j', 'REJECT')

  // Third layer, on the runner: from the veth only to the test hosts; nothing to the runner itself.
  const c = ['-m', 'comment', '--comment', tag]
  const rules: string[][] = [
    ['INPUT', '-i', veth, '-j', 'DROP'],
    ['FORWARD', '-o', veth, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
    ...opts.hosts.map((h) => ['FORWARD', '-i', veth, '-d', `${h.ip}/32`, '-j', 'ACCEPT']),
    ['FORWARD', '-i', veth, '-j', 'DROP'],
    ['FORWARD', '-o', veth, '-j', 'DROP'],
  ]
  // Inserted at the top in reverse, so they keep this order and precede every other rule.
  for (const r of [...rules].reverse()) await sh('iptables', ['-I', r[0]!, '1', ...r.slice(1), ...c])

  // DNS: dnsmasq on the namespace's loopback; the test hosts' names, NXDOMAIN for all else.
  const etc = `/etc/netns/${netns}`
  mkdirSync(etc, { recursive: true })
  const hostLines = opts.hosts.filter((h) => h.names?.length).map((h) => `${h.ip} ${h.names!.join(' ')}\n`)
  writeFileSync(`${etc}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n')
  writeFileSync(`${etc}/hosts`, `127.0.0.1 localhost\n${hostLines.join('')}`)
  const state = `/run/chatmail-dc-fence/${opts.name}`
  mkdirSync(state, { recursive: true })
  writeFileSync(`${state}/dnsmasq.hosts`, hostLines.join(''))
  const dns = spawn(
    'ip',
    [
      'netns',
      'exec',
      netns,
      DNSMASQ,
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${state}/dnsmasq.hosts`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--address=/#/',
      '--user=root',
      '--group=root',
      '--pid-file=',
      '--log-facility=/dev/null',
    ],
    { stdio: 'ignore' },
  )
  // Ready when it answers.
  const exec: Fence['exec'] = (cmd, timeoutMs = 30_000) =>
    new Promise((done) => {
      execFile('ip', ['netns', 'exec', netns, ...cmd], { timeout: timeoutMs }, (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0
        done({ code: typeof code === 'number' ? code : -1, stdout, stderr })
      })
    })
  let ready = false
  for (let i = 0; i < 50 && !ready && dns.exitCode === null; i++) {
    const r = await exec([process.execPath, '-e', RESOLVE_JS, 'localhost.invalid'], 5_000)
    ready = r.stdout.includes('ENOTFOUND')
    if (!ready) await new Promise((res) => setTimeout(res, 100))
  }
  const close = async () => {
    if (dns.exitCode === null) {
      dns.kill('SIGTERM')
      await new Promise((res) => dns.once('exit', res))
    }
    await teardown(netns, veth, tag)
  }
  if (!ready) {
    await close()
    throw new Error('the fence resolver (dnsmasq) did not start')
  }
  return { netns, ip, runnerIp, hosts: opts.hosts, exec, close }
}

/** A node one-liner for the fence proof: resolves argv[1] with the namespace's resolver, prints the result. */
export const RESOLVE_JS = `
const r = new (require('node:dns').promises.Resolver)({ timeout: 2000, tries: 1 }); r.setServers(['127.0.0.1']);
r.resolve4(process.argv[1]).then((a) => console.log(JSON.stringify(a)), (e) => console.log(e.code))`

/** A node one-liner: connects to argv[1]:argv[2], prints "connected" or the error code (3 s limit). */
export const CONNECT_JS = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 3000 })
s.on('connect', () => { console.log('connected'); s.destroy() })
s.on('timeout', () => { console.log('ETIMEDOUT'); s.destroy() })
s.on('error', (e) => console.log(e.code))`

export interface Core {
  dc: StdioDeltaChat
  rpc: RawClient
  proc: ChildProcess
  /** The accounts directory (removed on close unless kept). */
  dir: string
  /** The core's stderr so far (its log with RUST_LOG). */
  log(): string
  close(): Promise<void>
}

export interface CoreOptions {
  /** An accounts directory to use (and keep); default a fresh temp dir removed on close. */
  dir?: string
  /** RUST_LOG for the core, e.g. 'info' or 'iroh=debug'. */
  rustLog?: string
}

/** Starts deltachat-rpc-server inside the fence, talking JSON-RPC over its stdio. */
export async function startCore(fence: Fence, opts: CoreOptions = {}): Promise<Core> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'chatmail-dc-'))
  const proc = spawn('ip', ['netns', 'exec', fence.netns, CORE_BIN], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DC_ACCOUNTS_PATH: join(dir, 'accounts'),
      RUST_LOG: opts.rustLog ?? 'warn',
    },
  })
  let stderr = ''
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (stderr.length > 4 << 20) stderr = stderr.slice(-(2 << 20))
  })
  const dc = new StdioDeltaChat(proc.stdin!, proc.stdout!, true)
  const exited = new Promise<void>((res) => proc.once('exit', () => res()))
  try {
    await Promise.race([
      dc.rpc.getSystemInfo(),
      exited.then(() => {
        throw new Error(`deltachat-rpc-server exited at start: ${stderr.slice(-2000)}`)
      }),
    ])
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return {
    dc,
    rpc: dc.rpc,
    proc,
    dir,
    log: () => stderr,
    close: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        // The client's event loop keeps asking for events; once the input is closed those writes
        // fail, which is expected now and must not crash the process.
        proc.stdin!.on('error', () => {})
        proc.stdin!.end() // the server exits when its input closes
        const t = setTimeout(() => proc.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(t)
      }
      if (!opts.dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Waits for an event of this kind (on this account) that satisfies the predicate. */
export function waitForEvent<K extends DcEvent['kind']>(
  core: Core,
  accountId: number,
  kind: K,
  pred: (e: Extract<DcEvent, { kind: K }>) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<Extract<DcEvent, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const emitter = core.dc.getContextEvents(accountId)
    const on = (e: Extract<DcEvent, { kind: K }>) => {
      if (!pred(e)) return
      clearTimeout(t)
      emitter.off(kind, on as never)
      resolve(e)
    }
    const t = setTimeout(() => {
      emitter.off(kind, on as never)
      reject(new Error(`no ${kind} event on account ${accountId} within ${timeoutMs} ms`))
    }, timeoutMs)
    emitter.on(kind, on as never)
  })
}

/** EnteredLoginParam with only address and password (core finds the rest), optionally accepting self-signed TLS. */
/**
 * What a user types: address and password; `server` names the IMAP/SMTP host too, which core cannot
 * guess from a bracketed `user@[IP]` (it would try imap.[IP]).
 */
export function loginParam(
  addr: string,
  password: string,
  acceptInvalidCertificates = false,
  server: string | null = null,
): T.EnteredLoginParam {
  return {
    addr,
    password,
    imapServer: server,
    imapPort: null,
    imapFolder: null,
    imapSecurity: null,
    imapUser: null,
    smtpServer: server,
    smtpPort: null,
    smtpSecurity: null,
    smtpUser: null,
    smtpPassword: null,
    certificateChecks: acceptInvalidCertificates ? 'acceptInvalidCertificates' : null,
  }
}

/** One entry of core's `iceServers()`: what core hands to its WebRTC stack. */
export interface IceServer {
  urls: string[]
  username?: string
  credential?: string
}

/** The TURN servers core hands to its WebRTC stack (`iceServers()`), parsed. */
export async function iceServers(core: Core, accountId: number): Promise<IceServer[]> {
  return JSON.parse(await core.rpc.iceServers(accountId))
}

/**
 * A real TURN Allocate (the project's client, src/turn) with exactly what core's iceServers()
 * handed out: the URL (`turn:IP:PORT`, UDP as WebRTC reads a URL without `?transport`), the
 * username and the credential; it must be relayed at that IP and released at once. Then the same
 * with the credential changed in its first character, which the server must refuse as an
 * authentication failure (401 or 441). Resolves with both, for the test's log.
 */
export async function allocateAsCore(
  server: IceServer,
  url: string,
): Promise<{ allocated: AllocateResult; refused: TurnError }> {
  assert.ok(server.urls.includes(url), `${url} in ${JSON.stringify(server.urls)}`)
  const m = /^turn:(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(url)
  assert.ok(m, `core's TURN URL is turn:IPv4:PORT: ${url}`)
  assert.ok(server.username && server.credential, 'core handed out a username and a credential')
  const base = { host: m[1]!, port: Number(m[2]), transport: 'udp' as const, timeoutMs: 15_000 }
  const allocated = await allocate({ ...base, username: server.username, password: server.credential })
  assert.equal(allocated.relayed.address, base.host, 'relayed at the TURN server core named')
  assert.equal(allocated.released, true, 'the allocation was released')
  const c = server.credential
  const wrong = `${c[0] === 'A' ? 'B' : 'A'}${c.slice(1)}`
  const refused = await allocate({ ...base, username: server.username, password: wrong }).then(
    (r) => assert.fail(`a changed credential was allocated ${JSON.stringify(r.relayed)}`),
    (err: unknown) => err,
  )
  assert.ok(refused instanceof TurnError, String(refused))
  assert.equal(refused.kind, 'auth', `a changed credential: ${refused.message}`)
  assert.ok(refused.code === 401 || refused.code === 441, `a changed credential got ${refused.code}, not 401 or 441`)
  return { allocated, refused }
}

/** How hostHttps checks the certificate: the name it must be valid for, and the root it must chain to. */
export interface StrictTls {
  servername: string
  ca: string
}

/**
 * An HTTPS request from the runner to a test host: a self-signed one with the certificate not
 * checked (by its address, or given `{ servername }` by name: SNI and Host), or, given a `ca`
 * too, by name with the certificate checked strictly against it.
 */
export function hostHttps(
  ip: string,
  method: string,
  path: string,
  tls?: StrictTls | { servername: string },
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const headers = { 'content-length': 0, ...(tls ? { host: tls.servername } : {}) }
  const check =
    tls && 'ca' in tls
      ? { servername: tls.servername, ca: tls.ca, rejectUnauthorized: true, headers }
      : { ...(tls ? { servername: tls.servername } : {}), rejectUnauthorized: false, headers }
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: 443, method, path, ...check }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Why accounts cannot be signed up on this server yet, or undefined. */
export async function signupMissing(ip: string, servername?: string): Promise<string | undefined> {
  const tls = servername ? { servername } : undefined
  const r = await hostHttps(ip, 'GET', '/new', tls)
  if (r.status === 404) return 'the deployed server has no sign-up endpoint /new yet (issue 11: accounts, sign-up)'
  const page = await hostHttps(ip, 'GET', '/', tls)
  if (!/dcaccount:|signup\.js/i.test(page.body)) return 'the server page https://HOST/ offers no sign-up yet'
  return undefined
}

/**
 * One new account in the core, the way the app gets it from the server's page. A server with a
 * trusted certificate shows a dcaccount: link, which core recognises (checkQr → account) and
 * follows itself (addTransportFromQr POSTs to /new, strict certificate checks). A self-signed
 * server cannot be reached that way, so its page runs the sign-up in the browser (POST /new, as
 * signup.js does) and shows the dclogin: link it gets back, which tells core to accept the
 * certificate; core configures from that link alone (checkQr → login, addTransportFromQr).
 * `servername`: the page is asked for by that name (a server with a domain), else by the address.
 */
export async function signUp(
  core: Core,
  accountId: number,
  ip: string,
  query = '',
  servername?: string,
): Promise<{ addr: string; configureMs: number; via: 'dcaccount' | 'dclogin'; link: string }> {
  const tls = servername ? { servername } : undefined
  const page = await hostHttps(ip, 'GET', `/${query}`, tls)
  const account = dcaccountLink(page.body)
  let link: string
  let via: 'dcaccount' | 'dclogin'
  if (account) {
    const qr = await core.rpc.checkQr(accountId, account)
    assert.equal(qr.kind, 'account', `checkQr(${account}): ${JSON.stringify(qr)}`)
    ;[link, via] = [account, 'dcaccount']
  } else {
    assert.match(page.body, /signup\.js/, 'the sign-up page shows a dcaccount: link or runs the sign-up script')
    const created = await hostHttps(ip, 'POST', `/new${query}`, tls)
    assert.equal(created.status, 200, `POST /new${query}: ${created.body}`)
    const { dclogin_url, dclogin_qr_svg } = JSON.parse(created.body) as {
      dclogin_url?: string
      dclogin_qr_svg?: string
    }
    assert.match(dclogin_url ?? '', /^dclogin:/, 'a self-signed server hands out a dclogin: link')
    // ... and its QR code for the page (what a phone scans from a computer's screen).
    assert.equal(dclogin_qr_svg, qrSvg(dclogin_url!), 'the QR code /new sends encodes the dclogin: link')
    const qr = await core.rpc.checkQr(accountId, dclogin_url!)
    assert.equal(qr.kind, 'login', JSON.stringify(qr))
    ;[link, via] = [dclogin_url!, 'dclogin']
  }
  const t0 = performance.now()
  await core.rpc.addTransportFromQr(accountId, link)
  const configureMs = performance.now() - t0
  assert.equal(await core.rpc.isConfigured(accountId), true)
  const [transport] = await core.rpc.listTransports(accountId)
  return { addr: transport!.addr, configureMs, via, link }
}

/** The next incoming message of accountId whose text is `text` (others are passed over). */
export async function receiveText(
  core: Core,
  accountId: number,
  text: string,
  timeoutMs = 30_000,
): Promise<{ msg: T.Message; chatId: number }> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ev = await waitForEvent(core, accountId, 'IncomingMsg', () => true, Math.max(1, deadline - Date.now()))
    const msg = await core.rpc.getMessage(accountId, ev.msgId)
    if (msg.text === text) return { msg, chatId: ev.chatId }
  }
}

/**
 * Secure-Join: b scans a's invite; resolves when both sides report it done, with b's chat id.
 * `coreB`: b's core when it is another process than a's (default: the same core).
 */
export async function secureJoin(core: Core, a: number, b: number, timeoutMs = 60_000, coreB = core): Promise<number> {
  const invite = await core.rpc.getChatSecurejoinQrCode(a, null)
  assert.equal((await coreB.rpc.checkQr(b, invite)).kind, 'askVerifyContact')
  const joined = waitForEvent(coreB, b, 'SecurejoinJoinerProgress', (e) => e.progress === 1000, timeoutMs)
  const invited = waitForEvent(core, a, 'SecurejoinInviterProgress', (e) => e.progress === 1000, timeoutMs)
  const chatB = await coreB.rpc.secureJoin(b, invite)
  await Promise.all([joined, invited])
  return chatB
}

/** The dcaccount: link a sign-up page shows (HTML entities undone), or undefined. */
export function dcaccountLink(page: string): string | undefined {
  return /dcaccount:[^"'<>\s]+/i.exec(page)?.[0]?.replaceAll('&amp;', '&')
}

export interface Exchange {
  /** The chat of a with b, and of b with a. */
  chatA: number
  chatB: number
  secureJoinMs: number
  /** b→a and a→b, from sending to the IncomingMsg event. */
  messageMs: [number, number]
}

/**
 * Secure-Join (b scans a's invite), then an encrypted message each way: each must arrive, in the
 * chat the join made, and be shown with the padlock. `coreB`: b's core, if not a's.
 */
export async function secureJoinAndExchange(core: Core, a: number, b: number, coreB = core): Promise<Exchange> {
  const t0 = performance.now()
  const chatB = await secureJoin(core, a, b, 60_000, coreB)
  const secureJoinMs = performance.now() - t0
  const t1 = performance.now()
  const arriving = receiveText(core, a, 'hello from b')
  await coreB.rpc.miscSendTextMessage(b, chatB, 'hello from b')
  const inA = await arriving
  const ms1 = performance.now() - t1
  assert.equal(inA.msg.showPadlock, true, 'b→a arrived without the padlock')
  const t2 = performance.now()
  const back = receiveText(coreB, b, 'hello from a')
  await core.rpc.miscSendTextMessage(a, inA.chatId, 'hello from a')
  const inB = await back
  const ms2 = performance.now() - t2
  assert.equal(inB.msg.showPadlock, true, 'a→b arrived without the padlock')
  assert.equal(inB.chatId, chatB, 'a→b arrived in the chat the Secure-Join made')
  return { chatA: inA.chatId, chatB, secureJoinMs, messageMs: [ms1, ms2] }
}

/**
 * Our TURN server in core's iceServers() (`turn:IP:PORT`, as core resolves it), once core has read
 * the server's METADATA (until its first IMAP fetch it has only its public fallback servers).
 */
export async function ourIceServer(core: Core, accountId: number, url: string): Promise<IceServer> {
  let servers: IceServer[] = []
  for (let i = 0; i < 100; i++) {
    servers = await iceServers(core, accountId)
    if (servers.some((s) => s.urls.includes(url))) break
    await new Promise((r) => setTimeout(r, 200))
  }
  const ours = servers.filter((s) => s.urls.includes(url))
  assert.equal(ours.length, 1, `${url} once in iceServers(): ${JSON.stringify(servers)}`)
  return ours[0]!
}

/**
 * Runs `fn` with `accounts.registration` set to `mode` in DIR/chatmail.toml and deployed, then puts
 * the file back and deploys it again. `redeploy` resolves with the deploy's exit code and stderr.
 */
export async function withRegistration<R>(
  dir: string,
  mode: 'open' | 'invite' | 'closed',
  redeploy: () => Promise<{ code: number; stderr: string }>,
  fn: () => Promise<R>,
): Promise<R> {
  const path = join(dir, 'chatmail.toml')
  const original = readFileSync(path, 'utf8')
  const line = /^#?\s*registration\s*=.*$/m
  assert.match(original, line, 'chatmail.toml has a registration setting')
  writeFileSync(path, original.replace(line, `registration = "${mode}"`))
  try {
    const r = await redeploy()
    assert.equal(r.code, 0, `deploy with registration = "${mode}": ${r.stderr}`)
    return await fn()
  } finally {
    writeFileSync(path, original)
    await redeploy()
  }
}

/**
 * Configures a fresh account in core with an address that has no account yet (what a user types
 * in the app); resolves with core's error message when the server refuses it (and rejects when it
 * does not). The account is removed again.
 */
export async function newAccountRefusal(
  core: Core,
  addr: string,
  password: string,
  acceptInvalidCertificates = false,
): Promise<string> {
  const id = await core.rpc.addAccount()
  try {
    await core.rpc.addOrUpdateTransport(id, loginParam(addr, password, acceptInvalidCertificates))
  } catch (err) {
    return (err as Error).message
  } finally {
    await core.rpc.removeAccount(id)
  }
  throw new Error(`core configured ${addr}: the server created the account`)
}

/** A deployed test host, a fence that reaches only it (its name resolving), and a core inside. */
export interface CoreOnHost {
  d: DeployedHost
  fence: Fence
  core: Core
  /** Closes the core and the fence and stops the host; safe after a partial start. */
  close(): Promise<void>
}

/** Deploys a host (startDeployedHost) and starts a fenced core that reaches it by address and name. */
export async function startCoreOnHost(
  host: DeployedHostOptions,
  fence: Omit<FenceOptions, 'hosts'>,
): Promise<CoreOnHost> {
  const parts: Partial<CoreOnHost> = {}
  const close = async () => {
    await parts.core?.close().catch(() => {})
    await parts.fence?.close().catch(() => {})
    await parts.d?.stop()
  }
  try {
    const d = await startDeployedHost(host)
    parts.d = d
    parts.fence = await createFence({ ...fence, hosts: [{ ip: d.host.host, names: [d.host.domain] }] })
    parts.core = await startCore(parts.fence)
    return { d, fence: parts.fence, core: parts.core, close }
  } catch (err) {
    await close()
    throw err
  }
}
