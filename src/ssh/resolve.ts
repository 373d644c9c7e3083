/**
 * One place that turns what the user typed (a destination such as `root@host:2222` or an alias
 * from ~/.ssh/config, plus -i, --known-hosts, -F and --accept-new-host-key) into a fully resolved
 * connection target: address, port, user, identities, known_hosts files, host-key policy and the
 * jump hosts in front of it. `deploy host` and the doctor's host checks both use it.
 */
import { readFile } from 'node:fs/promises'
import { homedir, userInfo } from 'node:os'
import { join } from 'node:path'
import { cannotRun, usageError } from '../lib/errors.js'
import { type ConfigSource, expandHome, expandTokens, type HostOptions, lookupHost } from './config.js'
import { parseDestination } from './target.js'

/** OpenSSH's default identity files, in its order (readconf.c fill_default_options, ssh(1) -i). */
export const DEFAULT_IDENTITY_FILES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk']

export interface SshFlags {
  /** -i FILE: tried first, for the target (not for jump hosts, as with ssh -J). */
  identity?: string
  /** --known-hosts FILE: replaces the user known_hosts files (the config's UserKnownHostsFile). */
  knownHosts?: string
  /** -F FILE: the SSH config to read instead of ~/.ssh/config ('none': no config). */
  sshConfig?: string
  acceptNewHostKey?: boolean
  /** The user when neither the destination nor the config names one (default root). */
  defaultUser?: string
}

/** `strict`: only keys already in known_hosts; `accept-new`: a host without any key is recorded. */
export type HostKeyPolicy = 'strict' | 'accept-new'

export interface ResolvedHop {
  /** The name as typed (an alias or an address). */
  name: string
  host: string
  port: number
  user: string
  /** Identity files named by -i or IdentityFile, in order (tilde and tokens expanded). */
  identityFiles: string[]
  /** Try OpenSSH's default identity files (only when none is named, as ssh does). */
  defaultIdentities: boolean
  /** IdentitiesOnly: of the agent's keys use only those of the named files. */
  identitiesOnly: boolean
  /** The agent socket, or undefined for none. */
  agent: string | undefined
  /** known_hosts files to check, the first one receives an accepted new key. */
  knownHostsFiles: string[]
  hostKeyPolicy: HostKeyPolicy
  /** Set when the config's StrictHostKeyChecking yes forbids --accept-new-host-key. */
  strictBy?: ConfigSource
}

export interface ResolvedTarget extends ResolvedHop {
  /** Jump hosts, in the order they are connected through (ProxyJump). */
  jumps: ResolvedHop[]
  /** The SSH config file that was read, if any. */
  configFile: string | undefined
  /** Things the user should know (an option chatmail ignores, a looser setting it overrides). */
  notes: string[]
}

interface ConfigText {
  file: string
  text: string
}

async function loadConfigText(flag: string | undefined): Promise<ConfigText | undefined> {
  if (flag === 'none') return undefined
  const file = flag ? expandHome(flag) : join(homedir(), '.ssh', 'config')
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (!flag && e.code === 'ENOENT') return undefined
    throw cannotRun(`cannot read SSH config ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
  })
  return text === undefined ? undefined : { file, text }
}

function localUser(): string {
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? 'root'
  }
}

async function resolveHop(
  dest: string,
  config: ConfigText | undefined,
  flags: SshFlags,
  role: 'target' | 'jump',
  notes: string[],
): Promise<{ hop: ResolvedHop; proxyJump: string | undefined }> {
  const typed = parseDestination(dest)
  let options: HostOptions = { identityFiles: [], ignored: [] }
  if (config) {
    const found = await lookupHost(config.text, config.file, typed.host, typed.user)
    options = found.options
    for (const n of found.notes) if (!notes.includes(n)) notes.push(n)
  }
  const user = typed.user ?? options.user ?? (role === 'target' ? (flags.defaultUser ?? 'root') : localUser())
  const port = typed.port ?? options.port ?? 22
  const tokens = { host: typed.host, original: typed.host, user, port }
  const host = options.hostName ? expandTokens(options.hostName, tokens, config?.file) : typed.host
  const t = { ...tokens, host }
  const where = config?.file
  const named = options.identityFiles.map((f) => expandTokens(f, t, where))
  const identityFiles = [...(role === 'target' && flags.identity ? [expandHome(flags.identity)] : []), ...named]
  const agentOpt = options.identityAgent
  const agent =
    agentOpt === undefined || agentOpt === 'SSH_AUTH_SOCK'
      ? process.env.SSH_AUTH_SOCK || undefined
      : agentOpt.toLowerCase() === 'none'
        ? undefined
        : agentOpt.startsWith('$')
          ? process.env[agentOpt.slice(1)] || undefined
          : expandTokens(agentOpt, t, where)
  const knownHostsFiles = flags.knownHosts
    ? [expandHome(flags.knownHosts)]
    : options.userKnownHostsFiles && options.userKnownHostsFiles[0]?.toLowerCase() !== 'none'
      ? options.userKnownHostsFiles.map((f) => expandTokens(f, t, where))
      : [join(homedir(), '.ssh', 'known_hosts'), join(homedir(), '.ssh', 'known_hosts2')]
  let hostKeyPolicy: HostKeyPolicy = flags.acceptNewHostKey ? 'accept-new' : 'strict'
  let strictBy: ConfigSource | undefined
  const shkc = options.strictHostKeyChecking
  if (shkc) {
    if (shkc.value === 'yes') {
      if (hostKeyPolicy === 'accept-new') strictBy = shkc.source
      hostKeyPolicy = 'strict'
    } else if (shkc.value === 'no' || shkc.value === 'off' || shkc.value === 'ask') {
      const n = `${shkc.source.file} line ${shkc.source.line}: StrictHostKeyChecking ${shkc.value} is not followed; chatmail always checks host keys (a new host needs --accept-new-host-key)`
      if (!notes.includes(n)) notes.push(n)
    } else if (shkc.value !== 'accept-new') {
      throw cannotRun(`${shkc.source.file} line ${shkc.source.line}: unknown StrictHostKeyChecking ${shkc.value}`)
    }
  }
  return {
    hop: {
      name: typed.host,
      host,
      port,
      user,
      identityFiles,
      defaultIdentities: identityFiles.length === 0,
      identitiesOnly: options.identitiesOnly ?? false,
      agent,
      knownHostsFiles,
      hostKeyPolicy,
      ...(strictBy ? { strictBy } : {}),
    },
    proxyJump: options.proxyJump,
  }
}

/** One ProxyJump entry: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
function jumpDestination(entry: string): string {
  const e = entry.trim()
  if (e === '') throw usageError('empty ProxyJump entry')
  return e.startsWith('ssh://') ? e.slice('ssh://'.length).replace(/\/$/, '') : e
}

async function jumpChain(
  proxyJump: string | undefined,
  config: ConfigText | undefined,
  flags: SshFlags,
  notes: string[],
  depth: number,
): Promise<ResolvedHop[]> {
  if (!proxyJump || proxyJump.toLowerCase() === 'none') return []
  if (depth > 8) throw cannotRun('ProxyJump nests more than 8 jump hosts deep (a loop in the SSH config?)')
  const entries = proxyJump.split(',').map(jumpDestination)
  const hops: ResolvedHop[] = []
  for (const [i, entry] of entries.entries()) {
    const jumpFlags = { ...flags, identity: undefined }
    const { hop, proxyJump: own } = await resolveHop(entry, config, jumpFlags, 'jump', notes)
    // Like ssh -J a,b: the first jump host's own ProxyJump is followed; the later ones are reached
    // through the previous entry.
    if (i === 0) hops.push(...(await jumpChain(own, config, flags, notes, depth + 1)))
    hops.push(hop)
  }
  return hops
}

/**
 * Resolves a destination the way `ssh` would: the config's Host blocks for the name as typed,
 * then the command line over the config (-i first, --known-hosts, the user and port typed).
 */
export async function resolveTarget(destination: string, flags: SshFlags = {}): Promise<ResolvedTarget> {
  const config = await loadConfigText(flags.sshConfig)
  const notes: string[] = []
  const { hop, proxyJump } = await resolveHop(destination, config, flags, 'target', notes)
  const jumps = await jumpChain(proxyJump, config, flags, notes, 0)
  return { ...hop, jumps, configFile: config?.file, notes }
}

/** `myserver (root@203.0.113.5:2222 via admin@bastion)` for progress lines. */
export function describeTarget(t: ResolvedTarget): string {
  const hop = (h: ResolvedHop) => `${h.user}@${h.host}${h.port === 22 ? '' : `:${h.port}`}`
  const via = t.jumps.length ? ` via ${t.jumps.map(hop).join(', ')}` : ''
  return t.name === t.host ? `${hop(t)}${via}` : `${t.name} (${hop(t)}${via})`
}
