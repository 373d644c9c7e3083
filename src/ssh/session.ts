import { appendFile, readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { ClientChannel, ConnectConfig } from 'ssh2'
import ssh2 from 'ssh2'
import { cannotRun } from '../lib/errors.js'
import {
  formatKnownHostLine,
  type HostKeyVerdict,
  hostLookupName,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
} from './known-hosts.js'
import { sudoNeedsPassword, sudoWrap } from './sudo.js'
import type { SshTarget } from './target.js'

// Named ESM imports of ssh2 break (it is CommonJS); take Client from the default export.
const { Client } = ssh2

export interface SshOptions extends SshTarget {
  /** Private key file; without it the agent in SSH_AUTH_SOCK is used. */
  keyFile?: string
  passphrase?: string
  agent?: string
  /** Defaults to ~/.ssh/known_hosts. */
  knownHostsFile?: string
  /** Accept and record a host that is not in known_hosts yet (never a changed key). */
  acceptNewHostKey?: boolean
  /** Milliseconds for TCP connect + handshake + auth. */
  timeoutMs?: number
}

export interface ExecResult {
  code: number
  stdout: string
  stderr: string
}

export interface ExecOptions {
  stdin?: string | Buffer
  /** Run as root through `sudo -n` when the login user is not root (default true). */
  sudo?: boolean
}

const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
}
const ALL_HOST_KEY_ALGORITHMS = Object.values(HOST_KEY_ALGORITHMS).flat()

function describeConnectError(err: Error & { code?: string; level?: string }, where: string, timeoutMs: number) {
  const hint = 'check the address and port, that the host is up and that sshd runs on it'
  switch (err.code) {
    case 'ECONNREFUSED':
      return cannotRun(`cannot connect to ${where}: connection refused`, hint)
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return cannotRun(`cannot connect to ${where}: no route to host`, hint)
    case 'ETIMEDOUT':
      return cannotRun(`cannot connect to ${where}: timed out`, hint)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return cannotRun(`cannot connect to ${where}: the name does not resolve`, 'check the host name and your DNS')
  }
  if (err.level === 'client-timeout') {
    return cannotRun(`cannot connect to ${where}: no SSH handshake within ${Math.round(timeoutMs / 1000)} s`, hint)
  }
  if (err.level === 'client-authentication') {
    return cannotRun(
      `SSH login to ${where} refused: the server did not accept the key`,
      'check the user, the key (--identity) and the authorized_keys on the host',
    )
  }
  return cannotRun(`SSH connection to ${where} failed: ${err.message}`)
}

/** One SSH connection; every `exec` is one sequential round trip, counted in `roundTrips`. */
export class SshSession {
  roundTrips = 0
  readonly target: Required<SshTarget>
  private constructor(
    private readonly client: InstanceType<typeof Client>,
    target: Required<SshTarget>,
  ) {
    this.target = target
  }

  get isRoot(): boolean {
    return this.target.user === 'root'
  }

  static async connect(opts: SshOptions): Promise<SshSession> {
    const target = { host: opts.host, port: opts.port ?? 22, user: opts.user ?? 'root' }
    const where = `${target.user}@${hostLookupName(target.host, target.port)}`
    const timeoutMs = opts.timeoutMs ?? 15_000
    const knownHostsFile = opts.knownHostsFile ?? `${process.env.HOME ?? '/root'}/.ssh/known_hosts`
    const knownText = await readFile(knownHostsFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return ''
      throw cannotRun(`cannot read known_hosts file ${knownHostsFile}: ${e.message}`)
    })
    const entries = parseKnownHosts(knownText)
    const names = [hostLookupName(target.host, target.port)]
    const preferred = knownKeyTypes(entries, names).flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? [])
    const serverHostKey = [...new Set([...preferred, ...ALL_HOST_KEY_ALGORITHMS])]

    let verdict: HostKeyVerdict | undefined
    let newKey: Buffer | undefined
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: timeoutMs,
      keepaliveInterval: 10_000,
      algorithms: { serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      hostVerifier: (key: Buffer) => {
        verdict = verifyHostKey(entries, names, key)
        if (verdict.status === 'unknown' && opts.acceptNewHostKey) newKey = key
        return verdict.status === 'known' || (verdict.status === 'unknown' && !!opts.acceptNewHostKey)
      },
    }
    if (opts.keyFile) {
      config.privateKey = await readFile(opts.keyFile).catch((e: Error) => {
        throw cannotRun(`cannot read SSH key ${opts.keyFile}: ${e.message}`)
      })
      if (opts.passphrase) config.passphrase = opts.passphrase
    } else {
      config.agent = opts.agent ?? process.env.SSH_AUTH_SOCK
      if (!config.agent)
        throw cannotRun('no SSH key given and no ssh-agent running', 'pass a key file or start ssh-agent')
    }

    const client = new Client()
    try {
      await new Promise<void>((resolve, reject) => {
        // ssh2's readyTimeout starts after the TCP connect; bound the whole attempt ourselves.
        const timer = setTimeout(() => {
          client.end()
          reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }))
        }, timeoutMs + 1000)
        client.once('ready', () => {
          clearTimeout(timer)
          resolve()
        })
        // 'on', not 'once': ssh2 may emit a second error while tearing down, which must not crash.
        client.on('error', (err) => {
          clearTimeout(timer)
          reject(err)
        })
        client.connect(config)
      })
    } catch (err) {
      client.end()
      if (verdict?.status === 'changed') {
        throw cannotRun(
          `the host key of ${where} has CHANGED: ${knownHostsFile} line ${verdict.line} holds a different ${verdict.knownType} key`,
          `if the host was reinstalled on purpose, remove that line (ssh-keygen -R ${names[0]} -f ${knownHostsFile}); otherwise someone may be intercepting the connection`,
        )
      }
      if (verdict?.status === 'revoked') {
        throw cannotRun(`the host key of ${where} is marked @revoked in ${knownHostsFile} line ${verdict.line}`)
      }
      if (verdict?.status === 'unknown') {
        throw cannotRun(
          `the host key of ${where} is not in ${knownHostsFile}`,
          'check the fingerprint and add it (ssh-keyscan), or pass --accept-new-host-key to record it',
        )
      }
      throw describeConnectError(err as Error, where, timeoutMs)
    }
    if (newKey) await appendFile(knownHostsFile, `${formatKnownHostLine(names[0]!, newKey)}\n`, { mode: 0o600 })
    return new SshSession(client, target)
  }

  /** Wraps a command in `sudo -n` when needed. */
  wrap(command: string, sudo = true): string {
    return sudoWrap(command, this.isRoot, sudo)
  }

  /** Opens a channel without waiting for it to end (for long-lived helpers such as the lock). */
  async open(command: string, sudo = true): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(this.wrap(command, sudo), (err, stream) => (err ? reject(err) : resolve(stream)))
    })
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.roundTrips++
    const stream = await this.open(command, opts.sudo ?? true).catch((err: Error) => {
      throw cannotRun(`SSH exec on ${this.target.host} failed: ${err.message}`)
    })
    return collect(stream, opts.stdin).then((r) => {
      if (r.code !== 0 && sudoNeedsPassword(r.stderr)) {
        throw cannotRun(
          `sudo on ${this.target.host} needs a password`,
          `log in as root, or allow ${this.target.user} passwordless sudo (NOPASSWD)`,
        )
      }
      return r
    })
  }

  close(): void {
    this.client.end()
  }
}

/** Feeds stdin (a buffer or a stream), gathers stdout and stderr, resolves when the channel closes. */
export function collect(stream: ClientChannel, stdin?: string | Buffer | Readable): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = []
    const err: Buffer[] = []
    let code = -1
    stream.on('data', (d: Buffer) => out.push(d))
    stream.stderr.on('data', (d: Buffer) => err.push(d))
    stream.on('exit', (c: number | null, signal?: string) => {
      code = c ?? (signal ? 128 : -1)
    })
    stream.on('error', reject)
    stream.on('close', () =>
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    )
    if (stdin instanceof Readable) {
      stdin.on('error', reject)
      stdin.pipe(stream)
    } else stream.end(stdin)
  })
}
