/**
 * The start-up the programs on the host share (chatmail-accounts, chatmail-metadata,
 * chatmail-filter): reading the config file, the `[--check] CONFIG` command line, a unix socket to
 * listen on, the signals. Each service keeps its own typed config and parser. node: builtins only.
 */
import { chmodSync, chownSync, lstatSync, readFileSync, unlinkSync } from 'node:fs'
import type { Server } from 'node:net'
import type { Logger } from './log.js'

/** What a service's parseConfig answers. */
export type Parsed<C> = { ok: true; config: C; warnings?: string[] } | { ok: false; errors: string[] }

/**
 * Reads and parses the config file at path, logging each error (and warning) with the file's name.
 * The config, or undefined when the file cannot be read or is not valid.
 */
export function readConfig<C>(path: string, parse: (text: string) => Parsed<C>, log: Logger): C | undefined {
  let result: Parsed<C>
  try {
    result = parse(readFileSync(path, 'utf8'))
  } catch (err) {
    result = { ok: false, errors: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`] }
  }
  if (!result.ok) {
    for (const e of result.errors) log('error', `config ${path}: ${e}`)
    return undefined
  }
  for (const w of result.warnings ?? []) log('warn', `config ${path}: ${w}`)
  return result.config
}

/** `PROGRAM [--check] CONFIG`: the config's path, and whether only to check it. Else usage, exit 2. */
export function checkOrServeArgs(argv: string[], usage: string, log: Logger): { check: boolean; path: string } {
  const check = argv[0] === '--check'
  const path = check ? argv[1] : argv[0]
  if (!path || argv.length > (check ? 2 : 1)) {
    log('error', usage)
    process.exit(2)
  }
  return { check, path }
}

/** Removes a socket file a previous run left behind (nothing else); true when there was one. */
export function removeSocket(path: string): boolean {
  try {
    if (!lstatSync(path).isSocket()) return false
    unlinkSync(path)
    return true
  } catch {
    return false // absent
  }
}

function groupId(name: string): number {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const f = line.split(':')
    if (f[0] === name && f[2]) return Number(f[2])
  }
  throw new Error(`no group ${name}`)
}

export interface UnixSocket {
  path: string
  mode: number
  /** Group to give the socket (the service must be a member). */
  group?: string | undefined
}

/**
 * Listens on a unix socket: removes a stale socket file first, gives the socket its mode (and
 * group), then calls onListening. An error before listening ends the process (exit 1).
 * `what` names the socket in the log (e.g. "sign-up").
 */
export function listenUnix(
  server: Server,
  spec: UnixSocket,
  o: { backlog: number; log: Logger; what?: string },
  onListening: () => void,
): void {
  if (removeSocket(spec.path)) o.log('info', `removed stale socket ${spec.path}`)
  server.on('error', (err) => {
    o.log('error', `${o.what ? `${o.what} ` : ''}socket ${spec.path}: ${err.message}`)
    if (!server.listening) process.exit(1)
  })
  server.listen({ path: spec.path, backlog: o.backlog }, () => {
    chmodSync(spec.path, spec.mode)
    if (spec.group) chownSync(spec.path, -1, groupId(spec.group))
    onListening()
  })
}

/** SIGHUP re-reads the config; SIGTERM and SIGINT stop. */
export function onSignals(reload: () => void, stop: (signal: string) => void): void {
  process.on('SIGHUP', reload)
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}
