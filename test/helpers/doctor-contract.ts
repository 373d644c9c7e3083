import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** The doctor's check ids, in the contract order (src/doctor/registry.ts; `chatmail doctor --help`). */
export const CHECK_IDS = [
  'imap.tls',
  'imap.login',
  'imap.metadata.capability',
  'imap.xchatmail',
  'metadata.irohrelay',
  'metadata.turn',
  'metadata.turns',
  'turn.credential.hmac',
  'turn.credential.expiry',
  'turn.allocate.udp',
  'turn.allocate.tcp',
  'turn.allocate.tls',
  'turn.rejects-bad-credentials',
  'turn.rejects-expired-credentials',
  'turn.relay',
  'relay.ping',
  'relay.generate204',
  'relay.upgrade',
  'relay.handshake',
  'relay.forward',
  'tls.imap',
  'tls.submission',
  'tls.submission-starttls',
  'tls.https',
  'tls.turns',
  'mail.autoconfig',
  'mail.signup',
  'mail.submission',
  'mail.roundtrip',
  'mail.rejects-unencrypted',
] as const

/**
 * The dns group, after the tls group: only for a domain name (not an IP-only server) the world can
 * ask about, or with --nameserver (test/integration/doctor-dns.test.ts). Not in CHECK_IDS, which
 * the loopback tests (IP addresses) get.
 */
export const DNS_CHECK_IDS = [
  'dns.address',
  'dns.mx',
  'dns.spf',
  'dns.dkim',
  'dns.dmarc',
  'dns.mta-sts',
  'dns.tls-rpt',
  'dns.srv',
  'dns.caa',
  'dns.certificate',
] as const

/** The tls group: the certificate on every endpoint (test/integration/doctor-tls.test.ts). */
export const TLS_CHECK_IDS = CHECK_IDS.filter((id) => id.startsWith('tls.'))

/** The ids of the groups that need only IMAP (imap, discovery, credentials). */
export const LOCAL_CHECK_IDS = CHECK_IDS.slice(0, 9)

/** One check of `chatmail doctor --json`, as the JSON contract spells it. */
export interface JsonCheck {
  id: string
  group: string
  title: string
  status: 'ok' | 'warn' | 'fail' | 'skip'
  detail: string
  hint: string | null
  durationMs: number
}

export interface DoctorJsonRun {
  code: number
  stdout: string
  stderr: string
  report: { status: 'ok' | 'warn' | 'fail'; checks: JsonCheck[] }
}

/** Runs the built `chatmail doctor ARGS --json` (no account from the environment) and parses its report. */
export async function doctorJson(args: string[], cwd: string): Promise<DoctorJsonRun> {
  const { runCli } = await import('./cli.js')
  const r = await runCli(['doctor', ...args, '--json'], {
    cwd,
    env: { CHATMAIL_USER: '', CHATMAIL_PASSWORD: '' },
    timeoutMs: 60_000,
  })
  try {
    return { ...r, report: JSON.parse(r.stdout) }
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}

/**
 * The doctor's first arguments against a loopback dovecot: the server 127.0.0.1, its IMAPS port and
 * its account (password overridable, e.g. a wrong one).
 */
export function loopbackDoctorArgs(
  dovecot: { imapsPort: number; user: string; password: string },
  o: { password?: string } = {},
): string[] {
  return [
    '127.0.0.1',
    '--imap-host',
    '127.0.0.1',
    '--imap-port',
    String(dovecot.imapsPort),
    '--user',
    dovecot.user,
    '--password',
    o.password ?? dovecot.password,
  ]
}

/** The result of one check id; throws naming the ids present when it is missing. */
export function checkOf(r: DoctorJsonRun, id: string): JsonCheck {
  const c = r.report.checks.find((x) => x.id === id)
  if (!c) throw new Error(`no result for ${id}: ${r.report.checks.map((x) => x.id).join(' ')}`)
  return c
}

export interface DoctorScratch {
  dir: string
  /** The servers' certificates in one file, for --ca. */
  caFile: string
  /** The TURN secret (mode 0600), for --turn-secret-file. */
  secretFile: string
  remove(): Promise<void>
}

/** A working directory for runs of the built doctor, with its --ca file and --turn-secret-file. */
export async function doctorScratch(prefix: string, caPems: string[], secret: string): Promise<DoctorScratch> {
  if (!existsSync(resolve('dist/cli.js'))) throw new Error('build the CLI first: npm run build')
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const caFile = join(dir, 'ca.pem')
  const secretFile = join(dir, 'turn-secret')
  await writeFile(caFile, caPems.join('\n'))
  await writeFile(secretFile, `${secret}\n`, { mode: 0o600 })
  return { dir, caFile, secretFile, remove: () => rm(dir, { recursive: true, force: true }) }
}
