/**
 * Connecting one hop (the target or a jump host): host-key check against every known_hosts file,
 * the known key types offered first in the negotiation (as OpenSSH does), the identities in
 * OpenSSH's order, and errors that say what to do.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Duplex } from 'node:stream'
import type { ConnectConfig } from 'ssh2'
import ssh2 from 'ssh2'
import { type ChatmailError, cannotRun } from '../lib/errors.js'
import { type AskPassphrase, type AuthLog, authHandler, planIdentities, tildePath } from './identities.js'
import {
  formatKnownHostLine,
  type HostKeyVerdict,
  hostLookupName,
  type KnownHostEntry,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
} from './known-hosts.js'
import type { ResolvedHop } from './resolve.js'

const { Client } = ssh2
export type SshClient = InstanceType<typeof Client>

/** Checked too, never written (OpenSSH's GlobalKnownHostsFile default). */
const GLOBAL_KNOWN_HOSTS = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']

const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
}
const ALL_HOST_KEY_ALGORITHMS = Object.values(HOST_KEY_ALGORITHMS).flat()

/** Host-key algorithms with the types known_hosts holds for the host first (OpenSSH's order). */
export function hostKeyAlgorithms(knownTypes: string[]): string[] {
  const preferred = knownTypes.flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? [])
  return [...new Set([...preferred, ...ALL_HOST_KEY_ALGORITHMS])]
}

export interface HopOptions {
  timeoutMs: number
  askPassphrase?: AskPassphrase
  /** A stream through the previous hop (ProxyJump). */
  sock?: Duplex
  /** 'jump host' in messages for a hop in front of the target. */
  role?: string
}

async function readKnownHosts(files: string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = []
  for (const file of [...files, ...GLOBAL_KNOWN_HOSTS.filter((g) => !files.includes(g))]) {
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return ''
      throw cannotRun(`cannot read known_hosts file ${file}: ${e.message}`)
    })
    all.push(...parseKnownHosts(text, file))
  }
  return all
}

function describeConnectError(
  err: Error & { code?: string; level?: string },
  where: string,
  timeoutMs: number,
  log: AuthLog,
): ChatmailError {
  const hint = 'check the address and port, that the host is up and that sshd runs on it'
  switch (err.code) {
    case 'ECONNREFUSED':
      return cannotRun(`cannot connect to ${where}: connection refused`, hint)
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return cannotRun(`cannot connect to ${where}: no route to host`, hint)
    case 'EPERM':
    case 'EACCES':
      return cannotRun(`cannot connect to ${where}: a firewall rule on this machine refused it`, hint)
    case 'ETIMEDOUT':
      return cannotRun(`cannot connect to ${where}: timed out`, hint)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return cannotRun(`cannot connect to ${where}: the name does not resolve`, 'check the host name and your DNS')
  }
  if (err.level === 'client-timeout') {
    return cannotRun(`cannot connect to ${where}: no SSH handshake within ${Math.round(timeoutMs / 1000)} s`, hint)
  }
  if (err.level === 'client-authentication' && log.offered.length === 0 && log.locked.length > 0) {
    return cannotRun(
      `cannot log in to ${where}: the SSH key ${log.locked.join(', ')} is encrypted and its passphrase was not given${log.noTerminal ? ' (no terminal to ask on)' : ''}`,
      `add it to ssh-agent first (ssh-add ${log.locked[0]}), or run chatmail on a terminal to type the passphrase`,
    )
  }
  if (err.level === 'client-authentication') {
    const tried = log.offered.length ? `tried ${log.offered.join(', ')}` : 'no key could be offered'
    const locked = log.locked.length ? `; ${log.locked.join(', ')} is encrypted and was not unlocked` : ''
    return cannotRun(
      `SSH login to ${where} refused: the server did not accept the key (${tried}${locked})`,
      log.locked.length
        ? `add the key to ssh-agent (ssh-add ${log.locked[0]}) or run on a terminal to type its passphrase`
        : 'check the user, the key (-i FILE or IdentityFile) and the authorized_keys on the host',
    )
  }
  return cannotRun(`SSH connection to ${where} failed: ${err.message}`)
}

function hostKeyError(v: HostKeyVerdict, hop: ResolvedHop, where: string, name: string): ChatmailError | undefined {
  const files = hop.knownHostsFiles.map(tildePath).join(', ')
  if (v.status === 'changed') {
    const file = v.file ?? hop.knownHostsFiles[0]!
    return cannotRun(
      `the host key of ${where} has CHANGED: it offered a ${v.offeredType} key, but ${tildePath(file)} line ${v.line} holds a different ${v.knownType} key`,
      `if the host was reinstalled on purpose, remove its old keys (ssh-keygen -R '${name}' -f ${file}); otherwise someone may be intercepting the connection`,
    )
  }
  if (v.status === 'revoked') {
    return cannotRun(`the host key of ${where} is marked @revoked in ${tildePath(v.file ?? files)} line ${v.line}`)
  }
  if (v.status === 'unknown') {
    if (hop.strictBy) {
      return cannotRun(
        `the host key of ${where} is not in ${files}, and StrictHostKeyChecking yes (${tildePath(hop.strictBy.file)} line ${hop.strictBy.line}) forbids recording a new one`,
        `check the fingerprint and add it yourself: ssh-keyscan -p ${hop.port} ${hop.host} >> ${hop.knownHostsFiles[0]}`,
      )
    }
    return cannotRun(
      `the host key of ${where} is not in ${files}`,
      'check the fingerprint and add it (ssh-keyscan), or pass --accept-new-host-key to record it',
    )
  }
  return undefined
}

/** Connects and logs in to one hop; the returned client is ready for exec or forwardOut. */
export async function connectHop(hop: ResolvedHop, o: HopOptions): Promise<SshClient> {
  const name = hostLookupName(hop.host, hop.port)
  const where = `${o.role ? `${o.role} ` : ''}${hop.user}@${name}`
  const entries = await readKnownHosts(hop.knownHostsFiles)
  const names = [name]
  const explicit = hop.identityFiles[0]
  const steps = await planIdentities(hop, explicit)

  let verdict: HostKeyVerdict | undefined
  let newKey: Buffer | undefined
  const log: AuthLog = { offered: [], locked: [], skipped: [] }
  const client = new Client()
  try {
    await new Promise<void>((resolve, reject) => {
      // One timer for TCP connect, handshake and login, paused while a passphrase is typed.
      let timer: NodeJS.Timeout | undefined
      const arm = () => {
        timer = setTimeout(() => {
          client.end()
          reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }))
        }, o.timeoutMs)
      }
      const ask: AskPassphrase | undefined = o.askPassphrase
        ? async (file, attempt) => {
            clearTimeout(timer)
            try {
              return await o.askPassphrase!(file, attempt)
            } finally {
              arm()
            }
          }
        : undefined
      const config: ConnectConfig = {
        host: hop.host,
        port: hop.port,
        username: hop.user,
        ...(o.sock ? { sock: o.sock as ConnectConfig['sock'] } : {}),
        readyTimeout: 0,
        keepaliveInterval: 10_000,
        algorithms: {
          serverHostKey: hostKeyAlgorithms(knownKeyTypes(entries, names)) as NonNullable<
            ConnectConfig['algorithms']
          >['serverHostKey'],
        },
        hostVerifier: (key: Buffer) => {
          verdict = verifyHostKey(entries, names, key)
          if (verdict.status === 'unknown' && hop.hostKeyPolicy === 'accept-new') newKey = key
          return verdict.status === 'known' || (verdict.status === 'unknown' && hop.hostKeyPolicy === 'accept-new')
        },
        authHandler: authHandler(hop.user, steps, ask, log),
      }
      arm()
      client.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
      // 'on', not 'once': ssh2 may emit a second error while tearing down, which must not crash.
      client.on('error', (err: Error & { level?: string }) => {
        // An agent that fails (a stale SSH_AUTH_SOCK) is skipped; ssh2 goes on with the next key.
        if (err.level === 'agent') return
        clearTimeout(timer)
        reject(err)
      })
      client.connect(config)
    })
  } catch (err) {
    client.end()
    if (verdict) {
      const e = hostKeyError(verdict, hop, where, name)
      if (e) throw e
    }
    throw describeConnectError(err as Error, where, o.timeoutMs, log)
  }
  if (newKey) {
    const file = hop.knownHostsFiles[0]!
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await appendFile(file, `${formatKnownHostLine(name, newKey)}\n`, { mode: 0o600 })
  }
  return client
}

/** A TCP stream to host:port opened by the previous hop (what `ssh -J` does with -W). */
export function forwardThrough(client: SshClient, hop: ResolvedHop, via: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, hop.host, hop.port, (err, stream) => {
      if (err) {
        reject(
          cannotRun(
            `jump host ${via} cannot open a connection to ${hostLookupName(hop.host, hop.port)}: ${err.message}`,
            'check the address from the jump host, and that its sshd allows TCP forwarding (AllowTcpForwarding)',
          ),
        )
      } else resolve(stream)
    })
  })
}
