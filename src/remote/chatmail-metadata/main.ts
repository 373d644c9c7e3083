/**
 * chatmail-metadata: answers dovecot's `mail_attribute_dict = proxy:<socket>:metadata` lookups with
 * the iroh relay URL and freshly minted TURN credentials. Runs on the host with Debian's nodejs (18+),
 * node: builtins only.
 *
 *   chatmail-metadata CONFIG          serve (SIGHUP re-reads CONFIG and the secret, SIGTERM stops)
 *   chatmail-metadata --check CONFIG  validate CONFIG and exit (0 valid, 1 not)
 */
import { chmodSync, lstatSync, readFileSync, unlinkSync } from 'node:fs'
import type { Server } from 'node:net'
import { answer } from './answers.js'
import { type ConfigResult, describeConfig, parseConfig, type ServiceConfig } from './config.js'
import { imapServerEntry } from './keys.js'
import { type Logger, stderrLogger } from './log.js'
import { SecretStore } from './secret.js'
import { createDictServer } from './server.js'

const USAGE = 'usage: chatmail-metadata [--check] CONFIG'

function loadConfig(path: string): ConfigResult {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    return { ok: false, errors: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`] }
  }
  return parseConfig(text)
}

function reportConfig(path: string, result: ConfigResult, log: Logger): result is Extract<ConfigResult, { ok: true }> {
  if (!result.ok) {
    for (const e of result.errors) log('error', `config ${path}: ${e}`)
    return false
  }
  for (const w of result.warnings) log('warn', `config ${path}: ${w}`)
  return true
}

function removeStaleSocket(path: string, log: Logger): void {
  try {
    if (!lstatSync(path).isSocket()) return
    unlinkSync(path)
    log('info', `removed stale socket ${path}`)
  } catch {
    // absent: nothing to remove
  }
}

class Service {
  private server: Server | undefined
  private readonly secret: SecretStore

  constructor(
    private readonly configPath: string,
    private config: ServiceConfig,
    private readonly log: Logger,
  ) {
    this.secret = new SecretStore(config.secretFile, log)
  }

  lookup = (key: string, user: string): string | undefined => {
    const entry = imapServerEntry(key)
    const now = Date.now()
    const value = entry === undefined ? undefined : answer(entry, this.config, this.secret.get(now), now)
    if (this.config.verbose)
      this.log('debug', `lookup ${entry ?? key} for ${user || '-'}: ${value ? 'found' : 'not found'}`)
    return value
  }

  start(): void {
    this.secret.reload()
    removeStaleSocket(this.config.socket, this.log)
    const server = createDictServer({ lookup: this.lookup, log: this.log, verbose: () => this.config.verbose })
    server.on('error', (err) => {
      this.log('error', `socket ${this.config.socket}: ${err.message}`)
      if (!server.listening) process.exit(1)
    })
    server.listen({ path: this.config.socket, backlog: 4096 }, () => {
      chmodSync(this.config.socket, this.config.socketMode)
      this.log(
        'info',
        `listening on ${this.config.socket} (mode ${this.config.socketMode.toString(8)}); ${describeConfig(this.config)}`,
      )
    })
    this.server = server
  }

  reload(): void {
    const result = loadConfig(this.configPath)
    if (!reportConfig(this.configPath, result, this.log)) {
      this.log('error', 'reload failed: keeping the previous config')
      return
    }
    const next = result.config
    if (next.socket !== this.config.socket || next.socketMode !== this.config.socketMode) {
      this.log('warn', 'socket or socket_mode changed: restart the service to apply that')
    }
    this.config = { ...next, socket: this.config.socket, socketMode: this.config.socketMode }
    this.secret.reload(next.secretFile)
    this.log('info', `reloaded; ${describeConfig(this.config)}`)
  }

  stop(signal: string): void {
    this.log('info', `${signal}: stopping`)
    this.server?.close()
    removeStaleSocket(this.config.socket, () => {})
    process.exit(0)
  }
}

function main(argv: string[]): void {
  const log = stderrLogger()
  const check = argv[0] === '--check'
  const path = check ? argv[1] : argv[0]
  if (!path || argv.length > (check ? 2 : 1)) {
    log('error', USAGE)
    process.exit(2)
  }
  const result = loadConfig(path)
  if (!reportConfig(path, result, log)) process.exit(1)
  if (check) {
    log('info', `config ${path} is valid; ${describeConfig(result.config)}`)
    process.exit(0)
  }
  const service = new Service(path, result.config, log)
  process.on('SIGHUP', () => service.reload())
  process.on('SIGTERM', () => service.stop('SIGTERM'))
  process.on('SIGINT', () => service.stop('SIGINT'))
  service.start()
}

main(process.argv.slice(2))
