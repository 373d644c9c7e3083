/**
 * chatmail-accounts (src/remote/chatmail-accounts), the built file run by node as a child process
 * with its sockets in a temp dir, and the dovecot auth blocks that point a test dovecot at it.
 */
import { execFile, spawn } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Accounts, type Policy } from '../../src/remote/chatmail-accounts/accounts.js'
import { LastLogins } from '../../src/remote/chatmail-accounts/lastlogin.js'
import type { AccountStore } from '../../src/remote/chatmail-accounts/store.js'
import { buildRemote, type Dovecot, logWith, startDovecot, templateServices } from './dovecot.js'

const ROOT = join(import.meta.dirname, '..', '..')
export const ACCOUNTS_PROGRAM = join(ROOT, 'dist', 'remote', 'chatmail-accounts.js')

/**
 * chatmail-accounts' account logic in-process, for unit tests: on `store` (its login record in
 * `dir`), with the creation limit and the host's disk and memory out of the way, the clock stopped
 * at `now` (unix seconds), and its log lines collected.
 */
export function accountsOn(store: AccountStore, dir: string, policy: Policy, now: number) {
  const lastLogins = new LastLogins(dir)
  const log: string[] = []
  const accounts = new Accounts(policy, {
    store,
    lastLogins,
    invites: undefined as never,
    owners: { owner: () => 'ours', hasMailbox: () => false },
    limiter: { take: () => true } as never,
    resources: () => ({ freeDiskBytes: 1e12, availableMemoryBytes: 1e12 }),
    log: (_level, message) => log.push(message),
    now: () => now * 1000,
  })
  return { dir, store, lastLogins, accounts, log }
}

/**
 * A maildir with one seen message (`cur/1.host:2,S`), as the expiry tests lay them out; given
 * `mtime` (unix seconds), the mailbox directory gets that modification time.
 */
export function makeMailbox(dir: string, mtime?: number): void {
  mkdirSync(join(dir, 'cur'), { recursive: true })
  writeFileSync(join(dir, 'cur', '1.host:2,S'), 'a message\r\n')
  if (mtime !== undefined) utimesSync(dir, mtime, mtime)
}

/** `chatmail-accounts expire CONFIG`, the daily expiry, as the built program: its exit code and log. */
export function expireCommand(configPath: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ACCOUNTS_PROGRAM, 'expire', configPath], { timeout: 120_000 }, (err, _out, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    )
  })
}

export interface AccountsService {
  dir: string
  dataDir: string
  dictSocket: string
  socketmapSocket: string
  httpSocket: string
  controlSocket: string
  configPath: string
  readonly pid: number
  logs(): string
  /** Stops and starts the service on the same sockets, config and data. */
  restart(): Promise<void>
  writeConfig(extra: Record<string, string>): void
  reload(): Promise<void>
  stop(): Promise<void>
}

export interface AccountsOptions {
  domain?: string
  mailRoot: string
  /** More config keys, e.g. { registration: 'closed' }. */
  extra?: Record<string, string>
  /** An existing data dir (a restart keeps the accounts). */
  dataDir?: string
}

export async function startAccountsService(o: AccountsOptions): Promise<AccountsService> {
  buildRemote()
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-accounts-'))
  chmodSync(dir, 0o755)
  const dataDir = o.dataDir ?? join(dir, 'data')
  if (!o.dataDir) {
    const { mkdirSync } = await import('node:fs')
    mkdirSync(dataDir, { mode: 0o700 })
  }
  const configPath = join(dir, 'accounts.conf')
  let extra: Record<string, string> = {
    min_free_disk: '1M',
    min_available_memory: '1M',
    pbkdf2_rounds: '1000',
    // dovecot's auth process (its internal user when we are root) connects to the dict socket.
    ...(process.getuid?.() === 0 ? { dict_socket_group: 'dovecot' } : {}),
    ...o.extra,
  }
  const writeConfig = (more: Record<string, string>): void => {
    extra = { ...extra, ...more }
    const lines = [
      `domain = ${o.domain ?? 'example.org'}`,
      `data_dir = ${dataDir}`,
      `mail_root = ${o.mailRoot}`,
      `dict_socket = ${dir}/dict.socket`,
      `socketmap_socket = ${dir}/socketmap.socket`,
      `http_socket = ${dir}/http.socket`,
      `control_socket = ${dir}/control.socket`,
      ...Object.entries(extra).map(([k, v]) => `${k} = ${v}`),
      '',
    ]
    writeFileSync(configPath, lines.join('\n'))
  }
  writeConfig({})
  let stderr = ''
  let child = spawn(process.execPath, [ACCOUNTS_PROGRAM, configPath], { stdio: ['ignore', 'ignore', 'pipe'] })
  const logs = (): string => stderr
  const started = async (): Promise<void> => {
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    await logWith(logs, /control: listening/, 10_000)
    if (!/control: listening/.test(stderr)) throw new Error(`chatmail-accounts did not start:\n${stderr}`)
  }
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
  }
  await started()
  return {
    dir,
    dataDir,
    dictSocket: `${dir}/dict.socket`,
    socketmapSocket: `${dir}/socketmap.socket`,
    httpSocket: `${dir}/http.socket`,
    controlSocket: `${dir}/control.socket`,
    configPath,
    get pid() {
      return child.pid as number
    },
    logs,
    restart: async () => {
      await kill()
      stderr = ''
      child = spawn(process.execPath, [ACCOUNTS_PROGRAM, configPath], { stdio: ['ignore', 'ignore', 'pipe'] })
      await started()
    },
    writeConfig,
    reload: async () => {
      const n = (stderr.match(/reloaded|reload failed/g) ?? []).length
      child.kill('SIGHUP')
      const until = Date.now() + 5000
      while ((stderr.match(/reloaded|reload failed/g) ?? []).length === n && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    stop: async () => {
      await kill()
      if (!o.dataDir) rmSync(dir, { recursive: true, force: true })
      else rmSync(configPath, { force: true })
    },
  }
}

/** dovecot 2.3 passdb/userdb blocks for chatmail-accounts (the dict file is our template's). */
export function dovecotAuthBlocks(dictSocket: string, dir: string): string {
  const ext = join(dir, 'accounts-dict.conf.ext')
  const template = readFileSync(join(ROOT, 'templates', 'dovecot', 'accounts-dict.conf.ext'), 'utf8')
  writeFileSync(ext, template.replace('{{managed_by}}', 'test').replace('{{dict_socket}}', dictSocket))
  return [
    'auth_username_chars = abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@[]',
    'auth_username_format = %Lu',
    `passdb {\n  driver = dict\n  args = ${ext}\n}`,
    `userdb {\n  driver = dict\n  args = ${ext}\n}`,
  ].join('\n')
}

/**
 * The passdb and userdb chain of our dovecot 2.3 template (templates/dovecot/dovecot.conf), as it
 * is: the doctor's passwd-file, the operator's users file, then chatmail-accounts' dict; only the
 * paths are the test's (and the mail user the test dovecot's own).
 */
export function templateAuthChain(o: {
  dictSocket: string
  dir: string
  doctor: string
  users: string
  mailRoot: string
}): string {
  const text = readFileSync(join(ROOT, 'templates', 'dovecot', 'dovecot.conf'), 'utf8')
  const blocks = [...text.matchAll(/^(passdb|userdb) \{\n[\s\S]*?^\}\n/gm)].map((m) => m[0])
  if (blocks.length < 4) throw new Error('templates/dovecot/dovecot.conf: the passdb/userdb blocks were not found')
  const dict = dovecotAuthBlocks(o.dictSocket, o.dir)
  const head = dict.split('\n').filter((l) => l.startsWith('auth_'))
  return [
    ...head,
    ...blocks.map((b) =>
      b
        .replaceAll('{{doctor_passdb}}', o.doctor)
        .replaceAll('{{users_passdb}}', o.users)
        .replaceAll('{{accounts_dict}}', join(o.dir, 'accounts-dict.conf.ext'))
        // The deploy renders the server's domain (the bare IP on an IP-only server); on a domain
        // server that is the login's domain, %d.
        .replaceAll('{{mail_domain}}', '%d')
        .replace('uid=vmail gid=vmail home=/home/vmail/mail/', `home=${o.mailRoot}/`),
    ),
  ].join('\n')
}

/** POST /new on the service's HTTP socket, as nginx passes it (X-Real-IP, more `headers`): status and JSON body. */
export function postNew(
  socketPath: string,
  query = '',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path: `/new${query}`, method: 'POST', headers: { 'x-real-ip': '192.0.2.7', ...headers } },
      (res) => {
        let text = ''
        res.on('data', (d) => {
          text += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/**
 * AUTH PLAIN on a dovecot's auth-client socket as postfix's SASL asks it (service smtp unless
 * given), from client address `rip` when given: the reply line (`OK\t1…` or `FAIL\t1…`).
 */
export function saslAuth(
  authClient: string,
  user: string,
  password: string,
  service = 'smtp',
  rip?: string,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = connect(authClient)
    let buf = ''
    let sent = false
    s.on('error', reject)
    s.write(`VERSION\t1\t2\nCPID\t${process.pid}\n`)
    s.on('data', (d) => {
      buf += d.toString()
      if (!sent && buf.includes('DONE\n')) {
        sent = true
        const resp = Buffer.from(`\0${user}\0${password}`).toString('base64')
        s.write(`AUTH\t1\tPLAIN\tservice=${service}\tsecured${rip ? `\trip=${rip}` : ''}\tresp=${resp}\n`)
      }
      const m = /^(OK|FAIL)\t1\b.*$/m.exec(buf)
      if (m) {
        s.end()
        resolve(m[0])
      }
    })
  })
}

export interface AccountsWithDovecot {
  svc: AccountsService
  dovecot: Dovecot
  dataDir: string
  mailRoot: string
  /** dovecot's auth-client socket, where postfix's SASL asks. */
  authClient: string
  stop(): Promise<void>
}

/**
 * chatmail-accounts as the passdb and userdb of a real dovecot on loopback, whose imap-login and
 * imap processes run as our template runs them (long-lived, reused); no auth failure delay.
 */
export async function startAccountsWithDovecot(domain: string): Promise<AccountsWithDovecot> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chatmail-accounts-data-'))
  const mailRoot = mkdtempSync(join(tmpdir(), 'chatmail-accounts-mail-'))
  let svc: AccountsService | undefined
  let dovecot: Dovecot | undefined
  const stop = async () => {
    await svc?.stop()
    await dovecot?.stop()
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(mailRoot, { recursive: true, force: true })
  }
  try {
    svc = await startAccountsService({ domain, mailRoot, dataDir })
    dovecot = await startDovecot({
      auth: dovecotAuthBlocks(svc.dictSocket, svc.dir),
      extraConfig: `auth_failure_delay = 0\nauth_verbose = yes\n${templateServices()}`,
    })
    // The mail user (vmail when we are root) creates the mailboxes below the mail root.
    const owner = statSync(dovecot.homeRoot)
    chownSync(mailRoot, owner.uid, owner.gid)
    return { svc, dovecot, dataDir, mailRoot, authClient: join(dovecot.dir, 'run', 'auth-client'), stop }
  } catch (err) {
    await stop()
    throw err
  }
}
