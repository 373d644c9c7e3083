/**
 * chatmail-accounts: the accounts of a chatmail server. Runs on the host with Debian's nodejs (18+),
 * node: builtins only, as its own sandboxed user. It serves
 * - dovecot's dict passdb and userdb (first login creates an account when the rules allow),
 * - postfix's socketmap (`mailbox`: does this recipient have a mailbox?),
 * - the sign-up endpoint POST /new behind nginx,
 * - dovecot's last_login plugin (dict writes after each successful IMAP login),
 * - a control socket for root: invite tokens, the expiry of inactive accounts.
 *
 *   chatmail-accounts CONFIG                          serve (SIGHUP re-reads CONFIG; SIGTERM stops)
 *   chatmail-accounts --check CONFIG                  validate CONFIG and exit (0 valid, 1 not)
 *   chatmail-accounts invite CONFIG USES TTL_SECONDS  create an invite (prints JSON)
 *   chatmail-accounts expire CONFIG                   the daily expiry, as root (exit 0 done, 1 a step failed)
 */
import type { Server } from 'node:net'
import { lookupReply, MAX_LINE_LENGTH, parseCommand, replyFor } from '../lib/dict-protocol.js'
import { createLineServer, DEFAULT_LIMITS, type Reply } from '../lib/line-server.js'
import { type Logger, stderrLogger } from '../lib/log.js'
import { checkOrServeArgs, listenUnix, onSignals, readConfig, removeSocket } from '../lib/service.js'
import { Accounts, type Deps } from './accounts.js'
import { parseAuthKey } from './auth-keys.js'
import { expire, invite } from './commands.js'
import { describeConfig, parseConfig, type ServiceConfig, type SocketSpec } from './config.js'
import { createSignupServer } from './http.js'
import { InviteStore } from './invites.js'
import { LastLogins, lastLoginUser } from './lastlogin.js'
import { cachedResources, hostResources, RateLimiter } from './limits.js'
import { PasswdOwners } from './owners.js'
import { createSocketmapServer } from './socketmap.js'
import { AccountStore } from './store.js'

const USAGE = 'usage: chatmail-accounts [--check] CONFIG | invite CONFIG USES TTL_SECONDS | expire CONFIG'

class Service {
  private readonly servers: [Server, SocketSpec][] = []
  readonly accounts: Accounts
  private readonly deps: Deps
  private readonly store: AccountStore
  private readonly lastLogins: LastLogins
  readonly invites: InviteStore

  constructor(
    private readonly configPath: string,
    private config: ServiceConfig,
    private readonly log: Logger,
  ) {
    this.store = new AccountStore(config.dataDir, log)
    this.invites = new InviteStore(config.dataDir, log)
    this.lastLogins = new LastLogins(config.dataDir, (m) => log('error', m))
    this.deps = {
      store: this.store,
      lastLogins: this.lastLogins,
      invites: this.invites,
      owners: this.owners(config.passwdFiles),
      limiter: new RateLimiter(config.rateMax, config.rateWindowSeconds * 1000),
      resources: cachedResources(() => hostResources(this.config.diskPath)),
      log,
      now: Date.now,
    }
    this.accounts = new Accounts(config, this.deps)
  }

  private owners(files: string[]): PasswdOwners {
    return new PasswdOwners(
      files,
      () => this.config.rules.domain,
      (m) => this.log('error', m),
    )
  }

  /** One dict line: hello and transactions need no reply; lookups of passdb and userdb keys. */
  private dictLine = (line: string): Reply | Promise<Reply> => {
    const cmd = parseCommand(line)
    if (cmd.kind === 'unknown') return { close: `unknown command ${JSON.stringify(cmd.command)}` }
    if (cmd.kind !== 'lookup') return replyFor(cmd, () => undefined)
    const key = parseAuthKey(cmd.key)
    if (key.kind === 'userdb') {
      const fields = this.accounts.userdb(key.user)
      return lookupReply(fields && JSON.stringify(fields))
    }
    if (key.kind === 'passdb') {
      return this.accounts
        .passdb(key.user, key.password, key.client, key.service)
        .then((fields) => lookupReply(fields && JSON.stringify(fields)))
    }
    if (this.config.verbose) this.log('debug', `lookup of an unknown key ${cmd.key.slice(0, 40)}`)
    return lookupReply(undefined)
  }

  /** The last_login plugin's socket: only its writes count; every lookup finds nothing. */
  private lastloginLine = (line: string): Reply => {
    const cmd = parseCommand(line)
    if (cmd.kind === 'unknown') return { close: `unknown command ${JSON.stringify(cmd.command)}` }
    if (cmd.kind === 'change' && cmd.op === 'set') {
      const user = lastLoginUser(cmd.key)
      if (user !== undefined) this.accounts.recordLogin(user)
    }
    return replyFor(cmd, () => undefined)
  }

  private controlLine = (line: string): Reply => {
    let req: { op?: string; uses?: number; ttl?: number; addresses?: unknown }
    try {
      req = JSON.parse(line)
    } catch {
      return { close: 'not JSON' }
    }
    if (req.op === 'invite' && Number.isSafeInteger(req.uses) && Number.isSafeInteger(req.ttl)) {
      const invite = this.invites.create(req.uses as number, req.ttl as number, Date.now())
      this.log(
        'info',
        `created an invite for ${invite.uses} account(s), valid until ${new Date(invite.expires * 1000).toISOString()}`,
      )
      return `${JSON.stringify({ ok: true, ...invite, registration: this.config.registration })}\n`
    }
    if (req.op === 'expire') {
      const cutoff = Math.floor(Date.now() / 1000) - this.config.expiry.deleteInactiveAfter
      try {
        const expired = this.accounts.expireInactive(cutoff)
        return `${JSON.stringify({ ok: true, expired })}\n`
      } catch (err) {
        this.log('error', `expiry of inactive accounts failed: ${(err as Error).message}`)
        return `${JSON.stringify({ ok: false, reason: (err as Error).message })}\n`
      }
    }
    if (req.op === 'mailboxes-deleted' && Array.isArray(req.addresses)) {
      try {
        this.accounts.mailboxesDeleted(req.addresses.filter((a): a is string => typeof a === 'string'))
        return `${JSON.stringify({ ok: true })}\n`
      } catch (err) {
        this.log('error', `cannot update the list of expiring accounts: ${(err as Error).message}`)
        return `${JSON.stringify({ ok: false, reason: (err as Error).message })}\n`
      }
    }
    if (req.op === 'status') {
      return `${JSON.stringify({ ok: true, accounts: this.accounts.count, invites: this.invites.list(Date.now()).length, registration: this.config.registration })}\n`
    }
    return `${JSON.stringify({ ok: false, reason: 'unknown request' })}\n`
  }

  start(): void {
    const verbose = () => this.config.verbose
    const limits = { ...DEFAULT_LIMITS, maxConnections: this.config.maxConnections }
    const dict = createLineServer(
      this.dictLine,
      { ...limits, maxLineLength: MAX_LINE_LENGTH, name: 'dict connection' },
      this.log,
      verbose,
    )
    const control = createLineServer(
      this.controlLine,
      { ...limits, maxConnections: 16, maxLineLength: 4096, name: 'control connection' },
      this.log,
      verbose,
    )
    const socketmap = createSocketmapServer(
      (name, key) => (name === 'mailbox' && this.accounts.exists(key) ? key : undefined),
      { maxConnections: this.config.maxConnections, idleMs: limits.idleMs },
      this.log,
    )
    const http = createSignupServer(this.accounts, this.log)
    const c = this.config
    const sockets: [Server, SocketSpec, string][] = [
      [dict, c.dictSocket, 'dovecot passdb/userdb'],
      [socketmap, c.socketmapSocket, 'postfix socketmap'],
      [http, c.httpSocket, 'sign-up'],
      [control, c.controlSocket, 'control'],
    ]
    if (c.lastloginSocket) {
      const lastlogin = createLineServer(
        this.lastloginLine,
        { ...limits, maxLineLength: MAX_LINE_LENGTH, name: 'last-login connection' },
        this.log,
        verbose,
      )
      sockets.push([lastlogin, c.lastloginSocket, 'dovecot last_login'])
    }
    for (const [server, spec, what] of sockets) {
      listenUnix(server, spec, { backlog: 1024, log: this.log, what }, () =>
        this.log('info', `${what}: listening on ${spec.path}`),
      )
      this.servers.push([server, spec])
    }
    this.log('info', `${this.accounts.count} accounts; ${describeConfig(c)}`)
  }

  reload(): void {
    const next = readConfig(this.configPath, parseConfig, this.log)
    if (!next) {
      this.log('error', 'reload failed: keeping the previous config')
      return
    }
    // Sockets and data_dir stay; the policy changes at once (a new limit starts a new count).
    const before = this.config
    this.config = { ...next, dataDir: before.dataDir }
    if (this.config.rateMax !== before.rateMax || this.config.rateWindowSeconds !== before.rateWindowSeconds) {
      this.deps.limiter = new RateLimiter(this.config.rateMax, this.config.rateWindowSeconds * 1000)
    }
    if (this.config.passwdFiles.join(' ') !== before.passwdFiles.join(' ')) {
      this.deps.owners = this.owners(this.config.passwdFiles)
    }
    this.accounts.policy = this.config
    this.log('info', `reloaded; ${describeConfig(this.config)}`)
  }

  stop(signal: string): void {
    this.log('info', `${signal}: stopping`)
    for (const [server, spec] of this.servers) {
      server.close()
      removeSocket(spec.path)
    }
    this.lastLogins.save()
    this.store.close()
    process.exit(0)
  }
}

function main(argv: string[]): void {
  const log = stderrLogger()
  const [first, path, usesText, ttlText] = argv
  if (first === 'invite') {
    const uses = Number(usesText)
    const ttl = Number(ttlText)
    if (!path || !Number.isSafeInteger(uses) || uses < 1 || !Number.isSafeInteger(ttl) || ttl < 1) {
      log('error', USAGE)
      process.exit(2)
    }
    const config = readConfig(path, parseConfig, log)
    if (!config) process.exit(3)
    void invite(config, uses, ttl, log)
    return
  }
  if (first === 'expire') {
    if (!path || argv.length !== 2) {
      log('error', USAGE)
      process.exit(2)
    }
    const config = readConfig(path, parseConfig, log)
    if (!config) process.exit(3)
    void expire(config, log)
    return
  }
  const { check, path: configPath } = checkOrServeArgs(argv, USAGE, log)
  const config = readConfig(configPath, parseConfig, log)
  if (!config) process.exit(1)
  if (check) {
    log('info', `config ${configPath} is valid; ${describeConfig(config)}`)
    process.exit(0)
  }
  const service = new Service(configPath, config, log)
  onSignals(
    () => service.reload(),
    (signal) => service.stop(signal),
  )
  service.start()
}

main(process.argv.slice(2))
