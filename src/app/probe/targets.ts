/**
 * The prober's targets file (TOML): the only servers `chatmail probe` checks. Each [[target]] is a
 * doctor run spelled as keys (the doctor's flags without the dashes); relative paths are relative
 * to the file. Read and resolved once, at start: a mistake stops the prober with one line.
 */
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import * as v from 'valibot'
import { checkDomain } from '../../config/domain.js'
import type { DoctorOptions } from '../../doctor/model.js'
import { type DoctorFlags, resolveDoctorOptions } from '../../doctor/options.js'
import { parseTlsPorts } from '../../doctor/tls-ports.js'
import { ChatmailError, cannotRun, describeFsError, ExitCode } from '../../lib/errors.js'

const MAX_TARGETS = 256
const selectors = v.array(v.pipe(v.string(), v.regex(/^[a-z0-9.-]+$/, 'a check id or group')))
const path = v.pipe(v.string(), v.minLength(1))

const TargetSchema = v.strictObject({
  name: v.pipe(
    v.string('name must be a string'),
    v.check((s) => checkDomain(s).ok, 'name must be a domain name or an IPv4 address'),
  ),
  config: v.optional(path),
  imap_host: v.optional(v.string()),
  imap_port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))),
  user: v.optional(v.string()),
  password_file: v.optional(path),
  turn_secret_file: v.optional(path),
  ca: v.optional(path),
  insecure: v.optional(v.boolean(), false),
  relay_url: v.optional(v.string()),
  turn: v.optional(v.string()),
  nameserver: v.optional(v.string()),
  timeout: v.optional(v.pipe(v.number('timeout must be a number of seconds'), v.minValue(0.1), v.maxValue(600))),
  only: v.optional(selectors),
  skip: v.optional(selectors),
  tls_ports: v.optional(v.record(v.string(), v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)))),
})

const FileSchema = v.strictObject({
  target: v.pipe(
    v.array(TargetSchema, 'every [[target]] must be a table'),
    v.minLength(1, 'at least one [[target]] is needed'),
    v.maxLength(MAX_TARGETS, `at most ${MAX_TARGETS} targets`),
  ),
})

type RawTarget = v.InferOutput<typeof TargetSchema>

/** One server the prober may check, with everything its doctor run needs. */
export interface ProbeTarget {
  name: string
  options: DoctorOptions
  only?: string[]
  skip?: string[]
}

function issueText(issue: v.BaseIssue<unknown>): string {
  const where = (issue.path ?? []).map((p) => (typeof p.key === 'number' ? `[${p.key}]` : `.${String(p.key)}`))
  const key = where.join('').replace(/^\./, '')
  if (issue.type === 'strict_object' && issue.expected === 'never') return `unknown key "${key}"`
  return key ? `${key}: ${issue.message}` : issue.message
}

/** Parses the file's text (pure): the raw targets, names unique. */
export function parseTargetsText(text: string, file: string): RawTarget[] {
  let data: unknown
  try {
    data = parseToml(text)
  } catch (err) {
    const first = (err as Error).message.split('\n')[0]
    const at = err instanceof TomlError ? `line ${err.line}, column ${err.column}: ` : ''
    throw cannotRun(`${file}: ${at}${first}`)
  }
  const result = v.safeParse(FileSchema, data)
  if (!result.success) {
    throw cannotRun(
      `${file}: ${issueText(result.issues[0] as v.BaseIssue<unknown>)}`,
      'see docs/guides/monitoring.md for the keys of [[target]]',
    )
  }
  const seen = new Set<string>()
  for (const t of result.output.target) {
    if (seen.has(t.name)) throw cannotRun(`${file}: target ${t.name} is listed twice`)
    seen.add(t.name)
  }
  return result.output.target
}

async function resolveTarget(raw: RawTarget, base: string): Promise<ProbeTarget> {
  const at = (p: string | undefined) => (p === undefined ? undefined : resolve(base, p))
  const flags: DoctorFlags = {
    domain: raw.name,
    config: at(raw.config),
    imapHost: raw.imap_host,
    imapPort: raw.imap_port,
    user: raw.user,
    passwordFile: at(raw.password_file),
    turnSecretFile: at(raw.turn_secret_file),
    ca: at(raw.ca),
    insecure: raw.insecure,
    relayUrl: raw.relay_url,
    turn: raw.turn,
    timeout: raw.timeout === undefined ? undefined : String(raw.timeout),
    nameserver: raw.nameserver,
  }
  const { options } = await resolveDoctorOptions(flags)
  if (raw.tls_ports) options.tlsPorts = parseTlsPorts(Object.entries(raw.tls_ports).map(([k, p]) => `${k}=${p}`))
  return {
    name: raw.name,
    options,
    ...(raw.only ? { only: raw.only } : {}),
    ...(raw.skip ? { skip: raw.skip } : {}),
  }
}

/** Reads and resolves the targets file; every error names the file (and the target). */
export async function loadTargets(file: string): Promise<ProbeTarget[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw describeFsError(err, file, 'targets file')
  }
  const base = dirname(resolve(file))
  const targets: ProbeTarget[] = []
  for (const raw of parseTargetsText(text, file)) {
    try {
      targets.push(await resolveTarget(raw, base))
    } catch (err) {
      if (!(err instanceof ChatmailError)) throw err
      // The doctor's messages name its flags (--timeout): here they are the target's keys.
      const message = err.message.replace(/--([a-z-]+)/g, (_, k: string) => k.replace(/-/g, '_'))
      throw new ChatmailError(`${file}: target ${raw.name}: ${message}`, ExitCode.cannotRun, err.hint)
    }
  }
  return targets
}
