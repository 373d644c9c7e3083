/**
 * The built CLI (`npm run build` first, as `npm test` does) against a real dovecot on loopback:
 * the JSON and JUnit contracts, exit codes 0/1/2/3, --only/--skip, config values.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { METADATA_KEYS } from '../../src/protocols/metadata-values.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'
import { runCli } from '../helpers/cli.js'
import { type DoctorScratch, doctorScratch, LOCAL_CHECK_IDS } from '../helpers/doctor-contract.js'
import { type Dovecot, startDovecot } from '../helpers/dovecot.js'

const SECRET = 'cli-test-secret-0123456789abcdef'
const LOCAL = ['imap', 'discovery', 'credentials'].join(',')
const IDS = LOCAL_CHECK_IDS

interface Run {
  code: number
  stdout: string
  stderr: string
}

const cli = (args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> =>
  runCli(['doctor', ...args], { cwd, env: { CHATMAIL_USER: '', CHATMAIL_PASSWORD: '', ...env }, timeoutMs: 60_000 })

let dovecot: Dovecot
let scratch: DoctorScratch | undefined
let dir: string
let caFile: string
let secretFile: string

beforeAll(async () => {
  const cred = mintTurnCredential(SECRET, { ttlSeconds: 86400, nowMs: Date.now() })
  dovecot = await startDovecot({
    // On the config's domain (chatmail.toml refuses a doctor.user on another one), spelt as an
    // IP-only server of ours spells it: the address literal (a config's doctor@IP is read so).
    user: 'doctor@[127.0.0.1]',
    cert: { name: 'localhost', altNames: ['IP:127.0.0.1'] },
    extraConfig:
      'imap_capability = +XCHATMAIL\nauth_username_chars = abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@[]',
    metadata: {
      kind: 'file',
      values: {
        [METADATA_KEYS.irohrelay]: 'https://relay.example.org',
        [METADATA_KEYS.turn]: `turn.example.org:3478:${cred.username}:${cred.password}`,
      },
    },
  })
  scratch = await doctorScratch('chatmail-doctor-cli-', [dovecot.certPem], SECRET)
  ;({ dir, caFile, secretFile } = scratch)
})

afterAll(async () => {
  await dovecot?.stop()
  await scratch?.remove()
})

const serverFlags = () => [
  '127.0.0.1',
  '--imap-port',
  String(dovecot.imapsPort),
  '--ca',
  caFile,
  '--turn-secret-file',
  secretFile,
]
const account = () => ({ CHATMAIL_USER: dovecot.user, CHATMAIL_PASSWORD: dovecot.password })

describe('chatmail doctor (built CLI)', () => {
  it('--json: only JSON on stdout, the contract fields, stable ids in order, exit 0', async () => {
    const r = await cli([...serverFlags(), '--only', LOCAL, '--json'], dir, account())
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.status).toBe('ok')
    expect(out.checks.map((c: { id: string }) => c.id)).toEqual(IDS)
    for (const c of out.checks) {
      expect(Object.keys(c)).toEqual(['id', 'group', 'title', 'status', 'detail', 'hint', 'durationMs'])
      expect(['ok', 'warn', 'fail', 'skip']).toContain(c.status)
      expect(Number.isInteger(c.durationMs)).toBe(true)
    }
  })

  it('--junit FILE: valid XML, one testcase per check; the text report on stdout, progress on stderr', async () => {
    const xmlFile = join(dir, 'report.xml')
    const r = await cli([...serverFlags(), '--only', LOCAL, '--junit', xmlFile], dir, account())
    expect(r.code).toBe(0)
    const script = `import sys, json, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot().findall('testsuite')
print(json.dumps([len(s), s[0].get('name'), [[c.get('classname'), c.get('name')] for c in s[0].findall('testcase')]]))`
    const parsed = await new Promise<string>((ok, bad) =>
      execFile('python3', ['-c', script, xmlFile], (err, out) => (err ? bad(err) : ok(out))),
    )
    const [suites, name, cases] = JSON.parse(parsed)
    expect([suites, name]).toEqual([1, 'chatmail doctor'])
    expect(cases.map((c: string[]) => c[1])).toEqual(IDS)
    expect(cases[0]).toEqual(['imap', 'imap.tls'])
    expect(await readFile(xmlFile, 'utf8')).toContain('<skipped message=')
    for (const id of IDS) expect(r.stdout).toContain(id)
    expect(r.stdout).toMatch(/chatmail doctor: OK/)
    expect(r.stderr.trim().split('\n')).toHaveLength(IDS.length)
  })

  it('exit 1 when a check fails (wrong TURN secret), with the hint in the report', async () => {
    const wrong = join(dir, 'wrong-secret')
    await writeFile(wrong, 'not-the-secret-of-this-server\n', { mode: 0o600 })
    const flags = serverFlags().map((f) => (f === secretFile ? wrong : f))
    const r = await cli([...flags, '--only', LOCAL, '--json'], dir, account())
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    expect(out.status).toBe('fail')
    const hmac = out.checks.find((c: { id: string }) => c.id === 'turn.credential.hmac')
    expect(hmac.status).toBe('fail')
    expect(hmac.hint).toMatch(/secret/)
  })

  it('--only and --skip select by id and group', async () => {
    const only = JSON.parse((await cli([...serverFlags(), '--only', 'imap.tls', '--json'], dir, account())).stdout)
    expect(only.checks.map((c: { id: string }) => c.id)).toEqual(['imap.tls'])
    const r = await cli([...serverFlags(), '--only', LOCAL, '--skip', 'credentials', '--json'], dir, account())
    const skipped = JSON.parse(r.stdout).checks.filter((c: { group: string }) => c.group === 'credentials')
    expect(skipped.map((c: { status: string }) => c.status)).toEqual(['skip', 'skip'])
    expect(r.code).toBe(0)
  })

  it('takes the domain, account and secret from chatmail.toml', async () => {
    const cfgDir = await mkdtemp(join(tmpdir(), 'chatmail-doctor-cfg-'))
    const toml = [
      'domain = "127.0.0.1"',
      '[turn]',
      `secret = "${SECRET}"`,
      '[imap]',
      `port = ${dovecot.imapsPort}`,
      '[iroh]',
      'relay_url = "https://relay.example.org"',
      '[doctor]',
      `user = "${dovecot.user}"`,
      `password = "${dovecot.password}"`,
      '',
    ].join('\n')
    await writeFile(join(cfgDir, 'chatmail.toml'), toml, { mode: 0o600 })
    const r = await cli(['--ca', caFile, '--only', LOCAL, '--json'], cfgDir)
    // A server that advertises another relay than the config names is caught.
    await writeFile(
      join(cfgDir, 'chatmail.toml'),
      toml.replace('https://relay.example.org', 'https://other.example.org'),
    )
    const other = JSON.parse((await cli(['--ca', caFile, '--only', LOCAL, '--json'], cfgDir)).stdout)
    await rm(cfgDir, { recursive: true, force: true })
    const out = JSON.parse(r.stdout)
    expect(out.checks.find((c: { id: string }) => c.id === 'turn.credential.hmac').status).toBe('ok')
    expect(out.status).toBe('ok')
    expect(r.code).toBe(0)
    const relay = other.checks.find((c: { id: string }) => c.id === 'metadata.irohrelay')
    expect(relay.status).toBe('fail')
    expect(relay.detail).toMatch(
      /advertises https:\/\/relay\.example\.org\/, but the config's iroh\.relay_url is https:\/\/other\.example\.org\//,
    )
  })

  it('exit 3 without a domain or config; in --json mode a {"status":"error"} envelope', async () => {
    const plain = await cli([], dir)
    expect(plain.code).toBe(3)
    expect(plain.stderr).toMatch(/^chatmail: no domain/)
    const json = await cli(['--json'], dir)
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'error', error: { exitCode: 3 } })
  })

  it('exit 2 on a usage error: an unknown flag, an unknown check id, a bad --turn', async () => {
    expect((await cli(['example.org', '--bogus'], dir)).code).toBe(2)
    const unknown = await cli(['example.org', '--only', 'imap.nope'], dir)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('imap.nope')
    expect((await cli(['example.org', '--turn', 'no-port'], dir)).code).toBe(2)
  })

  it('documents the exit codes in --help', async () => {
    const r = await cli(['--help'], dir)
    expect(r.stdout).toMatch(/Exit codes:[\s\S]*3\s+could not run/)
  })
})
