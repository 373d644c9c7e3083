/**
 * Which keys a connection offers, in the order OpenSSH users expect: the identity files named
 * with -i or IdentityFile first (through the agent when it holds that key, so no passphrase is
 * asked), then the agent's other keys (not with IdentitiesOnly), then OpenSSH's default identity
 * files when no file was named. An encrypted file asks for its passphrase only when its turn
 * comes, i.e. when nothing before it was accepted.
 */
import { access, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { AnyAuthMethod, AuthenticationType, AuthHandlerMiddleware, NextAuthHandler, ParsedKey } from 'ssh2'
import ssh2 from 'ssh2'
import { cannotRun } from '../lib/errors.js'
import { DEFAULT_IDENTITY_FILES, type ResolvedHop } from './resolve.js'

const { BaseAgent, OpenSSHAgent, utils } = ssh2

/** Asks for a key's passphrase; undefined when there is no terminal to ask on. */
export type AskPassphrase = (keyFile: string, attempt: number) => Promise<string | undefined>

export type IdentityStep =
  | { kind: 'agent'; socket: string; keys: ParsedKey[]; label: string }
  | { kind: 'file'; file: string; label: string }

/** What happened to each identity, for the message when the server accepts none. */
export interface AuthLog {
  offered: string[]
  /** Encrypted keys that could not be unlocked (no terminal, or given up). */
  locked: string[]
  skipped: string[]
  /** An encrypted key was met and there was no terminal to ask for its passphrase. */
  noTerminal?: boolean
}

const blobOf = (k: ParsedKey) => k.getPublicSSH().toString('base64')

/** An agent that offers only some of the real agent's keys (one named key, or the rest). */
class SubsetAgent extends BaseAgent<ParsedKey> {
  constructor(
    private readonly inner: InstanceType<typeof OpenSSHAgent>,
    private readonly keys: ParsedKey[],
  ) {
    super()
  }
  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, this.keys)
  }
  sign(pubKey: ParsedKey, data: Buffer, options: object, cb?: (err: Error | undefined, sig?: Buffer) => void): void {
    this.inner.sign(pubKey, data, options as never, cb as never)
  }
}

function agentKeys(socket: string): Promise<ParsedKey[] | undefined> {
  return new Promise((resolve) => {
    const agent = new OpenSSHAgent(socket)
    agent.getIdentities((err, keys) => {
      if (err || !keys) return resolve(undefined)
      const parsed = keys.map((k) => utils.parseKey(k as never)).filter((k): k is ParsedKey => !(k instanceof Error))
      resolve(parsed)
    })
  })
}

const exists = (f: string) =>
  access(f).then(
    () => true,
    () => false,
  )

/** The public key of an identity file without its passphrase: the key itself if plain, else FILE.pub. */
async function publicBlob(file: string): Promise<string | undefined> {
  const data = await readFile(file).catch(() => undefined)
  if (!data) return undefined
  const key = utils.parseKey(data)
  if (!(key instanceof Error)) return blobOf(key)
  const pub = await readFile(`${file}.pub`).catch(() => undefined)
  const parsed = pub ? utils.parseKey(pub) : undefined
  return parsed && !(parsed instanceof Error) ? blobOf(parsed) : undefined
}

export const tildePath = (f: string) => (f.startsWith(`${homedir()}/`) ? `~${f.slice(homedir().length)}` : f)

/** The identities to try for one hop, in order. Throws when there is nothing to try at all. */
export async function planIdentities(hop: ResolvedHop, explicit: string | undefined): Promise<IdentityStep[]> {
  const steps: IdentityStep[] = []
  const agentList = hop.agent ? await agentKeys(hop.agent) : undefined
  const used = new Set<string>()
  const viaAgent = async (file: string): Promise<boolean> => {
    if (!agentList) return false
    const blob = await publicBlob(file)
    const k = blob ? agentList.find((a) => blobOf(a) === blob) : undefined
    if (!k || used.has(blob!)) return false
    used.add(blob!)
    steps.push({ kind: 'agent', socket: hop.agent!, keys: [k], label: `${tildePath(file)} (from the agent)` })
    return true
  }
  for (const file of hop.identityFiles) {
    if (!(await exists(file))) {
      if (file === explicit) throw cannotRun(`cannot read SSH key ${file}: no such file`)
      continue
    }
    if (!(await viaAgent(file))) steps.push({ kind: 'file', file, label: tildePath(file) })
  }
  if (agentList && !hop.identitiesOnly) {
    const rest = agentList.filter((k) => !used.has(blobOf(k)))
    for (const k of rest) used.add(blobOf(k))
    if (rest.length > 0)
      steps.push({ kind: 'agent', socket: hop.agent!, keys: rest, label: `the ssh-agent's ${rest.length} key(s)` })
  }
  if (hop.defaultIdentities) {
    for (const name of DEFAULT_IDENTITY_FILES) {
      const file = join(homedir(), '.ssh', name)
      if (!(await exists(file))) continue
      const blob = await publicBlob(file)
      if (blob && used.has(blob)) continue
      steps.push({ kind: 'file', file, label: tildePath(file) })
    }
  }
  if (steps.length === 0) {
    const defaults = DEFAULT_IDENTITY_FILES.map((n) => n).join(', ')
    throw cannotRun(
      `no SSH key to log in to ${hop.host} with: no -i, ${hop.agent ? 'the ssh-agent holds no key' : 'no ssh-agent running'}, and none of ~/.ssh/{${defaults}} exists`,
      'pass -i FILE, or add your key to ssh-agent (ssh-add), or create one: ssh-keygen -t ed25519',
    )
  }
  return steps
}

async function unlock(file: string, ask: AskPassphrase | undefined, log: AuthLog): Promise<ParsedKey | undefined> {
  const data = await readFile(file).catch((e: Error) => {
    throw cannotRun(`cannot read SSH key ${file}: ${e.message}`)
  })
  let key = utils.parseKey(data)
  if (!(key instanceof Error)) return key.isPrivateKey() ? key : undefined
  if (!/passphrase/i.test(key.message)) {
    log.skipped.push(`${tildePath(file)} (${key.message})`)
    return undefined
  }
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (!ask) log.noTerminal = true
    const pass = ask ? await ask(file, attempt) : undefined
    if (pass === undefined) {
      log.locked.push(tildePath(file))
      return undefined
    }
    key = utils.parseKey(data, pass)
    if (!(key instanceof Error)) return key
  }
  log.locked.push(tildePath(file))
  return undefined
}

/** An ssh2 authHandler that walks the steps, unlocking files as their turn comes. */
export function authHandler(user: string, steps: IdentityStep[], ask: AskPassphrase | undefined, log: AuthLog) {
  const pending = [...steps]
  const handler = (methodsLeft: AuthenticationType[] | null, _partial: boolean | null, next: NextAuthHandler) => {
    if (methodsLeft && !methodsLeft.includes('publickey')) {
      next(false as never)
      return
    }
    const step = pending.shift()
    if (!step) {
      next(false as never)
      return
    }
    if (step.kind === 'agent') {
      log.offered.push(step.label)
      const agent = new SubsetAgent(new OpenSSHAgent(step.socket), step.keys)
      next({ type: 'agent', username: user, agent } as AnyAuthMethod)
      return
    }
    unlock(step.file, ask, log).then(
      (key) => {
        if (!key) {
          handler(methodsLeft, _partial, next)
          return
        }
        log.offered.push(step.label)
        next({ type: 'publickey', username: user, key } as unknown as AnyAuthMethod)
      },
      (err: Error) => {
        log.skipped.push(`${step.label} (${err.message})`)
        handler(methodsLeft, _partial, next)
      },
    )
  }
  return handler as unknown as AuthHandlerMiddleware
}
