/**
 * A real dovecot (Debian's package) for tests: its own config, base_dir and log in a temp dir,
 * run in the foreground (`dovecot -c FILE -F`) as a child process, IMAP (plain + STARTTLS) and
 * IMAPS on 127.0.0.1 ephemeral ports, one passwd-file user, a certificate made with openssl
 * (name and validity on request). Not the system service; parallel test files do not collide.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'

export type MetadataOption =
  | { kind: 'proxy'; socket: string }
  | { kind: 'file'; values: Record<string, string> }
  | { kind: 'none' }

export interface CertOptions {
  /** CN and DNS subjectAltName; default `localhost`. */
  name?: string
  /** More subjectAltNames, e.g. `IP:127.0.0.1`, `DNS:mail.example.org`. */
  altNames?: string[]
  notBefore?: Date
  notAfter?: Date
  /** Shorthand: valid from 60 to 30 days ago. */
  expired?: boolean
}

export interface DovecotOptions {
  metadata?: MetadataOption
  /** `imap_metadata` (METADATA in CAPABILITY after login); default true. */
  advertiseMetadata?: boolean
  cert?: CertOptions
  user?: string
  password?: string
  /** Extra lines appended to dovecot.conf. */
  extraConfig?: string
  /** passdb/userdb blocks replacing the default passwd-file user (the user still gets a home dir). */
  auth?: string
}

export interface Dovecot {
  /** Where mailboxes may live (owned by the mail user), e.g. a mail_root for chatmail-accounts. */
  homeRoot: string
  host: string
  imapPort: number
  imapsPort: number
  user: string
  password: string
  /** PEM of the server certificate (to pin it, or to check a name). */
  certPem: string
  dir: string
  logs(): string
  stop(): Promise<void>
}

const MAIL_USER = 'vmail'
const DH_FILE = '/usr/share/dovecot/dh.pem'

interface Ids {
  uid: number
  gid: number
  /** Users dovecot's own processes run as. */
  internalUser: string
  loginUser: string
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function idOf(name: string, flag: '-u' | '-g'): number | undefined {
  try {
    return Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  } catch {
    return undefined
  }
}

/** As root: a system user `vmail` (created once, tolerating a parallel creation). Otherwise: ourselves. */
function mailIds(): Ids {
  const me = userInfo()
  if (me.uid !== 0) return { uid: me.uid, gid: me.gid, internalUser: me.username, loginUser: me.username }
  for (let attempt = 0; attempt < 20 && idOf(MAIL_USER, '-u') === undefined; attempt++) {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', MAIL_USER], {
        stdio: 'ignore',
      })
    } catch {
      // exists already (9) or /etc/passwd is locked by a parallel useradd (10): look again
      execFileSync('sleep', ['0.2'])
    }
  }
  const uid = idOf(MAIL_USER, '-u')
  const gid = idOf(MAIL_USER, '-g')
  if (uid === undefined || gid === undefined) throw new Error(`could not create the ${MAIL_USER} user`)
  return { uid, gid, internalUser: 'dovecot', loginUser: 'dovenull' }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/** openssl `ca` time format (GeneralizedTime, UTC). */
function asn1Time(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`
}

function certValidity(c: CertOptions): { from: Date; to: Date } {
  const day = 86_400_000
  if (c.expired) return { from: new Date(Date.now() - 60 * day), to: new Date(Date.now() - 30 * day) }
  return { from: c.notBefore ?? new Date(Date.now() - 3_600_000), to: c.notAfter ?? new Date(Date.now() + 30 * day) }
}

/** A self-signed certificate with an exact validity window (openssl 3.0's `req` cannot backdate). */
export function makeCert(dir: string, c: CertOptions = {}): { cert: string; key: string } {
  const name = c.name ?? 'localhost'
  const ca = join(dir, 'ca')
  mkdirSync(ca, { recursive: true })
  writeFileSync(join(ca, 'index.txt'), '')
  writeFileSync(join(ca, 'serial'), `${randomBytes(8).toString('hex')}\n`)
  const cnf = join(ca, 'ca.cnf')
  writeFileSync(
    cnf,
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `database = ${ca}/index.txt`,
      `new_certs_dir = ${ca}`,
      `serial = ${ca}/serial`,
      'default_md = sha256',
      'policy = any_name',
      'copy_extensions = copy',
      'unique_subject = no',
      '[any_name]',
      'commonName = supplied',
      '',
    ].join('\n'),
  )
  const key = join(dir, 'key.pem')
  const csr = join(ca, 'req.csr')
  const cert = join(dir, 'cert.pem')
  const san = [`DNS:${name}`, ...(c.altNames ?? [])].join(',')
  const quiet = { stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'] }
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], quiet)
  execFileSync(
    'openssl',
    ['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-addext', `subjectAltName=${san}`, '-out', csr],
    quiet,
  )
  const { from, to } = certValidity(c)
  execFileSync(
    'openssl',
    ['ca', '-batch', '-notext', '-config', cnf, '-selfsign', '-keyfile', key, '-in', csr, '-out', cert].concat([
      '-startdate',
      asn1Time(from),
      '-enddate',
      asn1Time(to),
    ]),
    quiet,
  )
  return { cert, key }
}

function metadataLines(m: MetadataOption): string[] {
  if (m.kind === 'proxy') return [`mail_attribute_dict = proxy:${m.socket}:metadata`]
  if (m.kind === 'file') return ['mail_attribute_dict = file:%h/dovecot-attributes']
  return []
}

function dovecotConf(o: {
  dir: string
  ids: Ids
  imapPort: number
  imapsPort: number
  cert: { cert: string; key: string }
  metadata: MetadataOption
  advertise: boolean
  extra: string
  auth: string | undefined
}): string {
  return [
    `base_dir = ${o.dir}/run`,
    `state_dir = ${o.dir}/state`,
    `log_path = ${o.dir}/dovecot.log`,
    `default_internal_user = ${o.ids.internalUser}`,
    `default_login_user = ${o.ids.loginUser}`,
    'first_valid_uid = 1',
    'protocols = imap',
    'listen = 127.0.0.1',
    'ssl = yes',
    `ssl_cert = <${o.cert.cert}`,
    `ssl_key = <${o.cert.key}`,
    ...(existsSync(DH_FILE) ? [`ssl_dh = <${DH_FILE}`] : []),
    'auth_mechanisms = plain login',
    'disable_plaintext_auth = no',
    ...(o.auth !== undefined
      ? [o.auth, `mail_uid = ${o.ids.uid}`, `mail_gid = ${o.ids.gid}`]
      : [
          'passdb {',
          '  driver = passwd-file',
          `  args = scheme=PLAIN username_format=%u ${o.dir}/users`,
          '}',
          'userdb {',
          '  driver = static',
          `  args = uid=${o.ids.uid} gid=${o.ids.gid} home=${o.dir}/home/%u`,
          '}',
        ]),
    'mail_location = maildir:~/Maildir',
    ...metadataLines(o.metadata),
    'protocol imap {',
    `  imap_metadata = ${o.advertise ? 'yes' : 'no'}`,
    '}',
    'service imap-login {',
    `  inet_listener imap {\n    port = ${o.imapPort}\n  }`,
    `  inet_listener imaps {\n    port = ${o.imapsPort}\n    ssl = yes\n  }`,
    '}',
    o.extra,
    '',
  ].join('\n')
}

/**
 * The login and session section of our Dovecot 2.3 template (templates/dovecot/dovecot.conf, from
 * its "# Login and session processes" comment to the end: `service imap-login`, `service imap`,
 * `service auth`, hibernation) without its inet_listeners and its unix_listeners at absolute paths
 * (postfix's), as dovecot.conf lines for a test dovecot's `extraConfig`: the login and session
 * processes run as deployed, with their limits.
 */
export function templateServices(): string {
  const text = readFileSync(join(import.meta.dirname, '..', '..', 'templates', 'dovecot', 'dovecot.conf'), 'utf8')
  const start = text.indexOf('\n# Login and session processes')
  if (start < 0) throw new Error('templates/dovecot/dovecot.conf has no "# Login and session processes" section')
  const out: string[] = []
  let skipping = 0
  for (const raw of text.slice(start + 1).split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    if (skipping > 0 || /^(inet_listener\b.*|unix_listener \/.*)\{$/.test(line)) {
      if (line.endsWith('{')) skipping++
      else if (line === '}') skipping--
      continue
    }
    if (line) out.push(raw)
  }
  return out.join('\n')
}

/** Resolves once the IMAP port greets; rejects if dovecot exits first. */
async function waitReady(child: ChildProcess, port: number, logs: () => string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`dovecot exited (${child.exitCode}):\n${logs()}`)
    if (await greets(port)) return
    await sleep(100)
  }
  throw new Error(`dovecot did not answer on port ${port} within 20 s:\n${logs()}`)
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.setTimeout(2000)
    s.once('data', (d) => {
      s.destroy()
      resolve(d.toString().startsWith('* OK'))
    })
    s.once('error', () => resolve(false))
    s.once('timeout', () => {
      s.destroy()
      resolve(false)
    })
  })
}

function prepareDir(ids: Ids, user: string, password: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-dovecot-'))
  chmodSync(dir, 0o755)
  for (const sub of ['run', 'state', 'home']) mkdirSync(join(dir, sub), { mode: 0o755 })
  chownSync(join(dir, 'home'), ids.uid, ids.gid)
  const home = join(dir, 'home', user)
  mkdirSync(home, { mode: 0o700 })
  chownSync(home, ids.uid, ids.gid)
  // Test-only password; the auth process (default_internal_user) must read the file.
  writeFileSync(join(dir, 'users'), `${user}:{PLAIN}${password}::::::\n`, { mode: 0o644 })
  return dir
}

function setFileMetadata(conf: string, user: string, values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    execFileSync('doveadm', ['-c', conf, 'mailbox', 'metadata', 'set', '-u', user, '-s', '', key, value], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
  }
}

/** Children still running when this process exits (a test that never reached its afterAll) die with it. */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

function track(child: ChildProcess): ChildProcess {
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

export async function startDovecot(opts: DovecotOptions = {}): Promise<Dovecot> {
  const ids = mailIds()
  const user = opts.user ?? 'alice@example.org'
  const password = opts.password ?? randomBytes(12).toString('base64url')
  const metadata = opts.metadata ?? { kind: 'none' }
  const dir = prepareDir(ids, user, password)
  const cert = makeCert(dir, opts.cert)
  const logFile = join(dir, 'dovecot.log')
  const logs = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
  const conf = join(dir, 'dovecot.conf')
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const [imapPort, imapsPort] = [await freePort(), await freePort()]
    const text = dovecotConf({
      dir,
      ids,
      imapPort,
      imapsPort,
      cert,
      metadata,
      advertise: opts.advertiseMetadata ?? true,
      extra: opts.extraConfig ?? '',
      auth: opts.auth,
    })
    writeFileSync(conf, text)
    const child = track(spawn('dovecot', ['-c', conf, '-F'], { stdio: ['ignore', 'ignore', 'pipe'] }))
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    try {
      await waitReady(child, imapPort, () => `${stderr}${logs()}`)
    } catch (err) {
      lastError = err
      await stopChild(child)
      if (/in use/i.test(`${stderr}${logs()}`)) continue
      break
    }
    if (metadata.kind === 'file') setFileMetadata(conf, user, metadata.values)
    return {
      homeRoot: join(dir, 'home'),
      host: '127.0.0.1',
      imapPort,
      imapsPort,
      user,
      password,
      certPem: readFileSync(cert.cert, 'utf8'),
      dir,
      logs: () => `${stderr}${logs()}`,
      stop: async () => {
        await stopChild(child)
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  rmSync(dir, { recursive: true, force: true })
  throw lastError
}

// ---------------------------------------------------------------------------------------------
// chatmail-metadata (src/remote/chatmail-metadata), the built file run by node as a child process:
// the dict that `metadata: {kind: 'proxy', socket}` points dovecot at.

const ROOT = join(import.meta.dirname, '..', '..')
export const METADATA_PROGRAM = join(ROOT, 'dist', 'remote', 'chatmail-metadata.js')
let built = false

/** Runs scripts/build-remote.mjs once per test process. */
export function buildRemote(): void {
  if (built) return
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-remote.mjs')], { stdio: ['ignore', 'ignore', 'pipe'] })
  built = true
}

export interface MetadataServiceOptions {
  domain?: string
  turnHost?: string
  turnPort?: number
  /** A port, or 'off'; default 5349. */
  turnsPort?: number | 'off'
  ttl?: string
  irohRelayUrl?: string
  /** The secret written (0600) to the secret file; null: write no file. Default: random. */
  secret?: string | null
  /** Run as this uid/gid (root only); the temp dir is handed to it. */
  uid?: number
  gid?: number
  verbose?: boolean
  maxSmtpRecipients?: number
}

export interface MetadataService {
  socket: string
  dir: string
  secret: string
  secretFile: string
  configPath: string
  pid: number
  alive(): boolean
  logs(): string
  /** Rewrites the config with these options (over the first ones). */
  writeConfig(o: MetadataServiceOptions): void
  /** SIGHUP, then waits for the reload's log line. */
  reload(): Promise<string>
  stop(): Promise<void>
}

function metadataConfig(dir: string, o: MetadataServiceOptions): string {
  const turns = o.turnsPort ?? 5349
  return [
    '# written by test/helpers/dovecot.ts',
    `socket = ${dir}/metadata.socket`,
    'socket_mode = 0666',
    `domain = ${o.domain ?? 'example.org'}`,
    `turn_host = ${o.turnHost ?? o.domain ?? 'example.org'}`,
    `turn_port = ${o.turnPort ?? 3478}`,
    `turns_port = ${turns}`,
    `turn_ttl = ${o.ttl ?? '1d'}`,
    ...(o.irohRelayUrl ? [`iroh_relay_url = ${o.irohRelayUrl}`] : []),
    ...(o.maxSmtpRecipients ? [`max_smtp_recipients = ${o.maxSmtpRecipients}`] : []),
    `secret_file = ${dir}/turn-secret`,
    `verbose = ${o.verbose ? 'yes' : 'no'}`,
    '',
  ].join('\n')
}

async function waitForLog(logs: () => string, pattern: RegExp, from: number, alive: () => boolean): Promise<string> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const m = pattern.exec(logs().slice(from))
    if (m) return m[0]
    if (!alive()) break
    await sleep(20)
  }
  throw new Error(`chatmail-metadata: no log line matching ${pattern}:\n${logs()}`)
}

export async function startMetadataService(opts: MetadataServiceOptions = {}): Promise<MetadataService> {
  buildRemote()
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-metadata-'))
  chmodSync(dir, 0o755)
  const secret = opts.secret === undefined ? randomBytes(24).toString('base64') : (opts.secret ?? '')
  const secretFile = join(dir, 'turn-secret')
  if (opts.secret !== null) writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 })
  const configPath = join(dir, 'metadata.conf')
  let current = opts
  const writeConfig = (o: MetadataServiceOptions): void => {
    current = { ...current, ...o }
    writeFileSync(configPath, metadataConfig(dir, current), { mode: 0o644 })
  }
  writeConfig(opts)
  if (opts.uid !== undefined) chownSync(dir, opts.uid, opts.gid ?? opts.uid)
  const child = track(
    spawn(process.execPath, [METADATA_PROGRAM, configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    }),
  )
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const logs = (): string => stderr
  const alive = (): boolean => child.exitCode === null && child.signalCode === null
  await waitForLog(logs, /listening on .*/, 0, alive)
  return {
    socket: join(dir, 'metadata.socket'),
    dir,
    secret,
    secretFile,
    configPath,
    pid: child.pid as number,
    alive,
    logs,
    writeConfig,
    reload: async () => {
      const from = stderr.length
      child.kill('SIGHUP')
      return waitForLog(logs, /(reloaded|reload failed).*/, from, alive)
    },
    stop: async () => {
      await stopChild(child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A service's log, once it contains `pattern` (or after `timeoutMs`): log lines arrive through a
 * pipe, so they may land a moment after the reply that a test has already read.
 */
export async function logWith(logs: () => string, pattern: RegExp, timeoutMs = 5000): Promise<string> {
  const until = Date.now() + timeoutMs
  while (!pattern.test(logs()) && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
  return logs()
}

/** Ports of dovecot's submission service: implicit TLS (like 465) and STARTTLS (like 587). */
export interface SubmissionPorts {
  implicit: number
  starttls: number
}

/**
 * dovecot.conf lines for its submission service (package dovecot-submissiond) on two loopback
 * ports, relaying to `relayPort` on loopback (default 9: nothing listens, so nothing is sent on).
 */
export function submissionConfig(p: SubmissionPorts, relayPort = 9): string {
  return [
    'protocols = imap submission',
    'hostname = localhost',
    'submission_relay_host = 127.0.0.1',
    `submission_relay_port = ${relayPort}`,
    'service submission-login {',
    `  inet_listener submission {\n    port = ${p.starttls}\n  }`,
    `  inet_listener submissions {\n    port = ${p.implicit}\n    ssl = yes\n  }`,
    '}',
  ].join('\n')
}

export const HAS_SUBMISSION = existsSync('/usr/lib/dovecot/submission')

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      done(true)
    })
    s.once('error', () => done(false))
  })
}

/**
 * `openssl s_server` on a loopback port with a certificate for `cert`: with `root`, it serves that
 * directory's files to GET (-WWW; anything else answers 200 with an error text), else a status page.
 */
export async function startHttps(
  dir: string,
  cert: CertOptions,
  root?: string,
): Promise<{ port: number; certPem: string; stop(): void }> {
  const files = makeCert(dir, cert)
  const port = await freePort()
  const child = track(
    spawn(
      'openssl',
      [
        's_server',
        '-quiet',
        root ? '-WWW' : '-www',
        '-accept',
        `127.0.0.1:${port}`,
        '-cert',
        files.cert,
        '-key',
        files.key,
      ],
      { stdio: 'ignore', ...(root ? { cwd: root } : {}) },
    ),
  )
  for (let i = 0; i < 100 && !(await listening(port)); i++) await sleep(50)
  return { port, certPem: readFileSync(files.cert, 'utf8'), stop: () => child.kill() }
}

/**
 * Where a dovecot's IMAP sessions are, from `doveadm -f tab who -1` and `doveadm -f tab process
 * status imap imap-hibernate`: held by an imap-hibernate process (hibernated) or by an imap
 * process, and how many imap processes serve a client now (the rest wait to be reused).
 * dovecot 2.3 names each session's protocol (`proto`: imap), 2.4 its service (`service`: imap or
 * imap-hibernate).
 */
export function sessionPlaces(
  who: string,
  processes: string,
): { hibernated: number; inImap: number; busyImap: number } {
  const table = (text: string) => {
    const [head = '', ...rows] = text.trim().split('\n')
    const names = head.split('\t')
    return rows.map((l) => {
      const cells = l.split('\t')
      return (name: string) => cells[names.indexOf(name)] ?? ''
    })
  }
  const hibernate = new Set<string>()
  let busyImap = 0
  // An imap process takes one client (client_limit 1): none available means it serves one.
  for (const p of table(processes)) {
    if (p('name') === 'imap-hibernate') hibernate.add(p('pid'))
    else if (p('name') === 'imap' && p('available_count') === '0') busyImap++
  }
  const sessions = table(who).filter((r) => /^imap(-hibernate)?$/.test(r('proto') || r('service')))
  const hibernated = sessions.filter((r) => r('service') === 'imap-hibernate' || hibernate.has(r('pid'))).length
  return { hibernated, inImap: sessions.length - hibernated, busyImap }
}
