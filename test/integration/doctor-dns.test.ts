/**
 * The doctor's dns group against a real authoritative server (Knot DNS on loopback) and an HTTPS
 * endpoint on loopback: the same verdicts as `chatmail dns --check`, plus the certificate check.
 * --nameserver and --imap-host 127.0.0.1 keep every connection on loopback.
 */
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Server, createServer as tlsServer } from 'node:tls'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type AuthDns, startAuthDns } from '../helpers/authdns.js'
import { runCli } from '../helpers/cli.js'
import { checkOf, DNS_CHECK_IDS, doctorJson } from '../helpers/doctor-contract.js'

let dns: AuthDns
let dir: string
let other: string
let zone: string
const servers: Server[] = []

function certificate(names: string[]): { key: string; cert: string } {
  const d = mkdtempSync(join(tmpdir(), 'chatmail-cert-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '30',
      '-keyout',
      join(d, 'key.pem'),
      '-out',
      join(d, 'cert.pem'),
      '-subj',
      `/CN=${names[0]}`,
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    ],
    { stdio: 'ignore' },
  )
  const r = { key: readFileSync(join(d, 'key.pem'), 'utf8'), cert: readFileSync(join(d, 'cert.pem'), 'utf8') }
  rmSync(d, { recursive: true, force: true })
  return r
}

async function https(names: string[]): Promise<number> {
  const s = tlsServer(certificate(names), (sock) => sock.end())
  servers.push(s)
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok))
  return (s.address() as { port: number }).port
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chatmail-doctor-dns-'))
  other = join(dir, 'other')
  mkdirSync(other)
  dns = await startAuthDns()
  expect((await runCli(['init', 'one.test', '--acme-email', 'admin@one.test'], { cwd: dir })).code).toBe(0)
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' })
  writeFileSync(join(dir, 'dkim.pem'), key as string)
  const z = await runCli(['dns', '--offline', '--address', '127.0.0.1', '--dkim-key', 'dkim.pem', '--zonefile', '-'], {
    cwd: dir,
  })
  expect(z.code, z.stderr).toBe(0)
  zone = z.stdout
}, 300_000)
afterAll(async () => {
  for (const s of servers) s.close()
  await dns?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const doctor = (cwd: string, httpsPort: number, ...extra: string[]) =>
  doctorJson(
    [
      'one.test',
      '--imap-host',
      '127.0.0.1',
      '--nameserver',
      dns.server,
      '--only',
      'dns',
      '--tls-port',
      `https=${httpsPort}`,
      ...extra,
    ],
    cwd,
  )

describe('doctor: the dns group', { timeout: 300_000 }, () => {
  test('the zone chatmail dns printed, and a certificate for every name: all ok, in contract order', async () => {
    await dns.setZone('one.test', zone)
    const r = await doctor(dir, await https(['one.test', 'mta-sts.one.test']))
    expect(r.report.checks.map((c) => c.id)).toEqual(DNS_CHECK_IDS)
    expect(
      r.report.checks.filter((c) => c.status !== 'ok'),
      r.stdout,
    ).toEqual([])
    expect(r.code).toBe(0)
    expect(checkOf(r, 'dns.certificate').detail).toContain('one.test, mta-sts.one.test')
  })

  test('chatmail deployed it: a missing record fails with the line to set; a certificate without mta-sts fails', async () => {
    await dns.setZone('one.test', zone.replace(/^_dmarc\..*$/m, '').replace(/^one\.test\. 3600 IN MX .*$/m, ''))
    const r = await doctor(dir, await https(['one.test']))
    expect(r.code).toBe(1)
    expect(checkOf(r, 'dns.mx')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('one.test. 3600 IN MX 10 one.test.'),
    })
    expect(checkOf(r, 'dns.dmarc')).toMatchObject({ status: 'fail' })
    expect(checkOf(r, 'dns.certificate')).toMatchObject({ status: 'fail' })
    expect(checkOf(r, 'dns.certificate').detail).toMatch(/not mta-sts\.one\.test/)
    expect(checkOf(r, 'dns.spf').status).toBe('ok')
  })

  test('a server chatmail did not deploy (no chatmail.toml): only a missing MX or address fails, the rest warns', async () => {
    const r = await doctor(other, await https(['one.test']))
    expect(checkOf(r, 'dns.mx').status).toBe('fail')
    expect(checkOf(r, 'dns.dmarc').status).toBe('warn')
    expect(checkOf(r, 'dns.certificate').status).toBe('warn')
    // Unknown without the config: the CA and the report address.
    expect(checkOf(r, 'dns.caa').status).toBe('skip')
    expect(checkOf(r, 'dns.tls-rpt').status).toBe('skip')
  })

  test('an IP-only server, or a special-use name without --nameserver, has no dns group', async () => {
    const ip = await doctorJson(['127.0.0.1', '--imap-port', '9', '--timeout', '1'], other)
    expect(ip.report.checks.some((c) => c.group === 'dns')).toBe(false)
    const special = await doctorJson(
      ['one.test', '--imap-host', '127.0.0.1', '--imap-port', '9', '--timeout', '1'],
      other,
    )
    expect(special.report.checks.some((c) => c.group === 'dns')).toBe(false)
  })
})
