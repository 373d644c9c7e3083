import { homedir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { ClientChannel } from 'ssh2'
import { cannotRun } from '../lib/errors.js'
import { connectHop, forwardThrough, type SshClient } from './connect.js'
import type { AskPassphrase } from './identities.js'
import { hostLookupName } from './known-hosts.js'
import type { ResolvedTarget } from './resolve.js'
import { sudoNeedsPassword, sudoWrap } from './sudo.js'
import type { SshTarget } from './target.js'

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

export interface ConnectOptions {
  /** Milliseconds for each hop's TCP connect + handshake + login (not counting a passphrase prompt). */
  timeoutMs?: number
  /** Asks for an encrypted key's passphrase; without it such a key is skipped with a hint. */
  askPassphrase?: AskPassphrase
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

/** One SSH connection; every `exec` is one sequential round trip, counted in `roundTrips`. */
export class SshSession {
  roundTrips = 0
  readonly target: Required<SshTarget>
  private constructor(
    private readonly client: SshClient,
    target: Required<SshTarget>,
    /** Jump-host connections the session runs through, closed with it. */
    private readonly jumps: SshClient[] = [],
  ) {
    this.target = target
  }

  get isRoot(): boolean {
    return this.target.user === 'root'
  }

  /** Connects with explicit options (tests, benchmarks): -i semantics for keyFile, one known_hosts file. */
  static async connect(opts: SshOptions): Promise<SshSession> {
    const agent = opts.keyFile ? undefined : (opts.agent ?? process.env.SSH_AUTH_SOCK) || undefined
    const target: ResolvedTarget = {
      name: opts.host,
      host: opts.host,
      port: opts.port ?? 22,
      user: opts.user ?? 'root',
      identityFiles: opts.keyFile ? [opts.keyFile] : [],
      defaultIdentities: !opts.keyFile,
      identitiesOnly: !!opts.keyFile,
      agent,
      knownHostsFiles: [opts.knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts')],
      hostKeyPolicy: opts.acceptNewHostKey ? 'accept-new' : 'strict',
      jumps: [],
      configFile: undefined,
      notes: [],
    }
    const pass = opts.passphrase
    return SshSession.connectTo(target, {
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      ...(pass ? { askPassphrase: async (_f, attempt) => (attempt === 1 ? pass : undefined) } : {}),
    })
  }

  /**
   * Connects to a target from `resolveTarget`: through its jump hosts in order, each with its own
   * host-key check, then to the target itself.
   */
  static async connectTo(target: ResolvedTarget, o: ConnectOptions = {}): Promise<SshSession> {
    const timeoutMs = o.timeoutMs ?? 15_000
    const clients: SshClient[] = []
    try {
      let previous: { client: SshClient; name: string } | undefined
      for (const hop of [...target.jumps, target]) {
        const isJump = hop !== target
        const sock = previous ? await forwardThrough(previous.client, hop, previous.name) : undefined
        const client = await connectHop(hop, {
          timeoutMs,
          ...(o.askPassphrase ? { askPassphrase: o.askPassphrase } : {}),
          ...(sock ? { sock } : {}),
          ...(isJump ? { role: 'jump host' } : {}),
        })
        clients.push(client)
        previous = { client, name: `${hop.user}@${hostLookupName(hop.host, hop.port)}` }
      }
    } catch (err) {
      for (const c of clients.reverse()) c.end()
      throw err
    }
    const client = clients.pop()!
    return new SshSession(client, { host: target.host, port: target.port, user: target.user }, clients)
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
    for (const j of [...this.jumps].reverse()) j.end()
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
