/**
 * ~/.ssh/config (ssh_config(5)) as `ssh` reads it, for the options chatmail honours: Host and
 * Match blocks, Include, HostName, User, Port, IdentityFile, IdentitiesOnly, IdentityAgent,
 * UserKnownHostsFile, StrictHostKeyChecking and ProxyJump. The file is tokenised by the
 * `ssh-config` package; which block applies to a host, first-value-wins, Include and token
 * expansion are done here (its own `compute()` runs `Match exec` commands and `nslookup`,
 * which a deploy tool must not do behind the user's back).
 */
import { readdir, readFile } from 'node:fs/promises'
import { homedir, userInfo } from 'node:os'
import { dirname, isAbsolute, join } from 'node:path'
import SSHConfig, { LineType } from 'ssh-config'
import { cannotRun } from '../lib/errors.js'
import { globMatch } from './known-hosts.js'

/** Where a value came from, for messages: `~/.ssh/config line 12`. */
export interface ConfigSource {
  file: string
  line: number
}

export interface HostOptions {
  hostName?: string
  user?: string
  port?: number
  identityFiles: string[]
  identitiesOnly?: boolean
  identityAgent?: string
  userKnownHostsFiles?: string[]
  strictHostKeyChecking?: { value: string; source: ConfigSource }
  proxyJump?: string
  /** Options found in the file that chatmail does not act on but that could matter (warned once). */
  ignored: string[]
}

interface ParsedFile {
  file: string
  lines: { param: string; values: string[]; line: number; block?: Block }[]
}

interface Block {
  kind: 'host' | 'match'
  values: string[]
  line: number
  body: { param: string; values: string[]; line: number }[]
}

/** The options that change how chatmail connects; everything else is of no concern to us. */
const HONOURED = new Set([
  'hostname',
  'user',
  'port',
  'identityfile',
  'identitiesonly',
  'identityagent',
  'userknownhostsfile',
  'stricthostkeychecking',
  'proxyjump',
  'include',
])
/** Options that would make `ssh` connect differently from chatmail: the user is told. */
const NOT_SUPPORTED = new Set([
  'proxycommand',
  'hostkeyalias',
  'certificatefile',
  'pkcs11provider',
  'knownhostscommand',
])

function valuesOf(value: string | { val: string }[]): string[] {
  if (typeof value === 'string') return [value]
  return value.map((v) => v.val)
}

/** Parses one config file; line numbers are counted from the text the parser keeps around each node. */
export function parseSshConfig(text: string, file: string): ParsedFile {
  let parsed: SSHConfig
  try {
    parsed = SSHConfig.parse(text)
  } catch (err) {
    throw cannotRun(`cannot parse SSH config ${file}: ${(err as Error).message}`)
  }
  let newlines = 0
  const count = (s: string | undefined) => {
    for (const c of s ?? '') if (c === '\n') newlines++
  }
  const out: ParsedFile = { file, lines: [] }
  for (const node of parsed) {
    count(node.before)
    const line = newlines + 1
    count(node.after)
    if (node.type !== LineType.DIRECTIVE) continue
    const param = node.param.toLowerCase()
    const values = valuesOf(node.value)
    if ((param === 'host' || param === 'match') && 'config' in node) {
      const block: Block = { kind: param, values, line, body: [] }
      for (const sub of node.config) {
        count(sub.before)
        const subLine = newlines + 1
        count(sub.after)
        if (sub.type !== LineType.DIRECTIVE) continue
        block.body.push({ param: sub.param.toLowerCase(), values: valuesOf(sub.value), line: subLine })
      }
      out.lines.push({ param, values, line, block })
    } else {
      out.lines.push({ param, values, line })
    }
  }
  return out
}

/** ssh_config PATTERNS: a comma or space separated list, `!` negates and a negated match wins. */
export function patternListMatches(patterns: string[], name: string): boolean {
  let matched = false
  for (const p of patterns.flatMap((v) => v.split(','))) {
    if (p === '') continue
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false
    } else if (globMatch(p, name)) matched = true
  }
  return matched
}

interface Context {
  originalHost: string
  /** The user given on the command line, if any (for `Match user`). */
  user: string | undefined
  opts: HostOptions
  sources: ConfigSource[]
  depth: number
  notes: string[]
}

function matchBlock(values: string[], ctx: Context, where: ConfigSource): boolean {
  let i = 0
  let all = true
  while (i < values.length) {
    const word = values[i]!.toLowerCase()
    const negate = word.startsWith('!')
    const key = negate ? word.slice(1) : word
    let ok: boolean
    if (key === 'all') {
      ok = true
      i++
    } else if (key === 'host' || key === 'originalhost' || key === 'user' || key === 'localuser') {
      const arg = values[i + 1]
      if (arg === undefined) throw cannotRun(`${where.file} line ${where.line}: Match ${key} needs an argument`)
      const subject =
        key === 'host'
          ? (ctx.opts.hostName ?? ctx.originalHost)
          : key === 'originalhost'
            ? ctx.originalHost
            : key === 'user'
              ? (ctx.user ?? ctx.opts.user ?? 'root')
              : localUser()
      ok = patternListMatches([arg], subject)
      i += 2
    } else {
      // exec, canonical, final, localnetwork, tagged: not evaluated (exec would run a command).
      ctx.notes.push(`${where.file} line ${where.line}: Match ${key} is not supported; that block is not applied`)
      return false
    }
    if (negate) ok = !ok
    all = all && ok
  }
  return all
}

function localUser(): string {
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? ''
  }
}

function apply(ctx: Context, param: string, values: string[], where: ConfigSource): void {
  const o = ctx.opts
  const first = values[0] ?? ''
  switch (param) {
    case 'hostname':
      o.hostName ??= first
      return
    case 'user':
      o.user ??= first
      return
    case 'port': {
      if (o.port !== undefined) return
      const n = Number(first)
      if (!Number.isInteger(n) || n < 1 || n > 65535)
        throw cannotRun(`${where.file} line ${where.line}: Port ${first} is not a port number`)
      o.port = n
      return
    }
    case 'identityfile':
      o.identityFiles.push(first)
      return
    case 'identitiesonly':
      o.identitiesOnly ??= yesNo(first, where, 'IdentitiesOnly')
      return
    case 'identityagent':
      o.identityAgent ??= first
      return
    case 'userknownhostsfile':
      o.userKnownHostsFiles ??= values
      return
    case 'stricthostkeychecking':
      o.strictHostKeyChecking ??= { value: first.toLowerCase(), source: where }
      return
    case 'proxyjump':
      o.proxyJump ??= values.join(',')
      return
  }
}

function yesNo(v: string, where: ConfigSource, name: string): boolean {
  const s = v.toLowerCase()
  if (s === 'yes' || s === 'true') return true
  if (s === 'no' || s === 'false') return false
  throw cannotRun(`${where.file} line ${where.line}: ${name} must be yes or no, not ${v}`)
}

async function readInclude(pattern: string, baseDir: string): Promise<string[]> {
  const path = expandHome(pattern)
  const full = isAbsolute(path) ? path : join(baseDir, path)
  const dir = dirname(full)
  const base = full.slice(dir.length + 1)
  if (!/[*?]/.test(base)) return [full]
  if (/[*?]/.test(dir)) throw cannotRun(`Include ${pattern}: wildcards are supported in the file name only`)
  const names = await readdir(dir).catch(() => [] as string[])
  return names
    .filter((n) => globMatch(base, n))
    .sort()
    .map((n) => join(dir, n))
}

async function applyLines(
  lines: { param: string; values: string[]; line: number }[],
  file: string,
  ctx: Context,
): Promise<void> {
  for (const l of lines) {
    const where = { file, line: l.line }
    if (l.param === 'include') {
      if (ctx.depth >= 16) throw cannotRun(`${file} line ${l.line}: Include nested too deeply`)
      // ssh reads relative includes of the user config from ~/.ssh.
      for (const pattern of l.values) {
        for (const inc of await readInclude(pattern, join(homedir(), '.ssh'))) {
          const text = await readFile(inc, 'utf8').catch(() => undefined)
          if (text === undefined) continue
          await applyFile(parseSshConfig(text, inc), { ...ctx, depth: ctx.depth + 1 })
        }
      }
      continue
    }
    if (HONOURED.has(l.param)) {
      ctx.sources.push(where)
      apply(ctx, l.param, l.values, where)
    } else if (NOT_SUPPORTED.has(l.param) && !ctx.opts.ignored.includes(l.param)) {
      ctx.opts.ignored.push(l.param)
      ctx.notes.push(`${file} line ${l.line}: ${l.param} is not supported by chatmail and is ignored`)
    }
  }
}

async function applyFile(parsed: ParsedFile, ctx: Context): Promise<void> {
  for (const l of parsed.lines) {
    if (!l.block) {
      await applyLines([l], parsed.file, ctx)
      continue
    }
    const where = { file: parsed.file, line: l.line }
    const active =
      l.block.kind === 'host'
        ? patternListMatches(l.block.values, ctx.originalHost)
        : matchBlock(l.block.values, ctx, where)
    if (active) await applyLines(l.block.body, parsed.file, ctx)
  }
}

export interface SshConfigLookup {
  options: HostOptions
  /** Notes for the user (unsupported Match criteria, ignored options). */
  notes: string[]
}

/** The options for one host (the name as typed: an alias or an address) from one config text. */
export async function lookupHost(text: string, file: string, host: string, user?: string): Promise<SshConfigLookup> {
  const ctx: Context = {
    originalHost: host,
    user,
    opts: { identityFiles: [], ignored: [] },
    sources: [],
    depth: 0,
    notes: [],
  }
  await applyFile(parseSshConfig(text, file), ctx)
  return { options: ctx.opts, notes: ctx.notes }
}

export interface Tokens {
  /** %h: the host name after HostName. */
  host: string
  /** %n: the name as typed. */
  original: string
  /** %r: the remote user. */
  user: string
  /** %p */
  port: number
}

export function expandHome(path: string): string {
  if (path === '~') return homedir()
  if (path.startsWith('~/')) return join(homedir(), path.slice(2))
  return path
}

/** ssh_config TOKENS for IdentityFile, UserKnownHostsFile and HostName, and a leading `~`. */
export function expandTokens(value: string, t: Tokens, where = 'SSH config'): string {
  const out = value.replace(/%(.)/g, (_all, c: string) => {
    switch (c) {
      case '%':
        return '%'
      case 'h':
        return t.host
      case 'n':
        return t.original
      case 'r':
        return t.user
      case 'p':
        return String(t.port)
      case 'd':
        return homedir()
      case 'u':
        return localUser()
      case 'i':
        return String(process.getuid?.() ?? '')
      default:
        throw cannotRun(`${where}: the token %${c} in '${value}' is not supported`)
    }
  })
  return expandHome(out)
}
