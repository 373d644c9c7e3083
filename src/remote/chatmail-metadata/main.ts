/**
 * chatmail-metadata: answers dovecot's `mail_attribute_dict = proxy:<socket>:metadata` lookups with
 * the iroh relay URL and freshly minted TURN credentials. Runs on the host with Debian's nodejs (18+),
 * node: builtins only.
 *
 *   chatmail-metadata CONFIG          serve (SIGHUP re-reads CONFIG and the secret, SIGTERM stops)
 *   chatmail-metadata --check CONFIG  validate CONFIG and exit (0 valid, 1 not)
 */
import type { Server } from 'node:net'
import { type Logger, stderrLogger } from '../lib/log.js'
import { checkOrServeArgs, listenUnix, onSignals, readConfig, removeSocket } from '../lib/service.js'
import { answer } from './answers.js'
import { describeConfig, parseConfig, type ServiceConfig } from './config.js'
import { imapServerEntry } from './keys.js'
import { SecretStore } from './secret.js'
import { createDictServer } from './server.js'

const USAGE = 'usage: chatmail-metadata [--check] CONFIG'

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
    const server = createDictServer({ lookup: this.lookup, log: this.log, verbose: () => this.config.verbose })
    const { socket, socketMode } = this.config
    listenUnix(server, { path: socket, mode: socketMode }, { backlog: 4096, log: this.log }, () =>
      this.log('info', `listening on ${socket} (mode ${socketMode.toString(8)}); ${describeConfig(this.config)}`),
    )
    this.server = server
  }

  reload(): void {
    const next = readConfig(this.configPath, parseConfig, this.log)
    if (!next) {
      this.log('error', 'reload failed: keeping the previous config')
      return
    }
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
    removeSocket(this.config.socket)
    process.exit(0)
  }
}

function main(argv: string[]): void {
  const log = stderrLogger()
  const { check, path } = checkOrServeArgs(argv, USAGE, log)
  const config = readConfig(path, parseConfig, log)
  if (!config) process.exit(1)
  if (check) {
    log('info', `config ${path} is valid; ${describeConfig(config)}`)
    process.exit(0)
  }
  const service = new Service(path, config, log)
  onSignals(
    () => service.reload(),
    (signal) => service.stop(signal),
  )
  service.start()
}

main(process.argv.slice(2))
