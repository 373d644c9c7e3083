/**
 * `chatmail dns` against a real authoritative server (Knot DNS on loopback, test/helpers/authdns.ts):
 * before the records exist every one is listed in one run with the line to set; after loading
 * what --zonefile printed, all are ok; wrong values and CNAMEs are judged; errors are one line
 * with the documented exit code. No traffic leaves loopback (--nameserver, --offline).
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type AuthDns, startAuthDns } from '../helpers/authdns.js'
import { runCli } from '../helpers/cli.js'
import { zoneRecordIds } from '../helpers/zone-records.js'

let dns: AuthDns
let dir: string
const pem = (bits = 2048) =>
  generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string

interface Finding {
  id: string
  name: string
  status: string
  level: string
  detail: string
  fix?: string[]
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chatmail-dns-'))
  dns = await startAuthDns()
  const init = await runCli(['init', 'one.test', '--acme-email', 'admin@one.test'], { cwd: dir })
  expect(init.code, init.stderr).toBe(0)
  writeFileSync(join(dir, 'dkim.pem'), pem())
  writeFileSync(join(dir, 'other.pem'), pem())
})
afterAll(async () => {
  await dns?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const base = () => ['--offline', '--address', '10.0.0.1', '--dkim-key', 'dkim.pem']
const check = async (...extra: string[]) => {
  const r = await runCli(['dns', '--check', ...base(), '--nameserver', dns.server, '--json', ...extra], { cwd: dir })
  let out: { status: string; records: Finding[] }
  try {
    out = JSON.parse(r.stdout)
  } catch {
    throw new Error(`no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`)
  }
  const byId = (id: string) => {
    const f = out.records.find((x) => x.id === id)
    if (!f) throw new Error(`no ${id} in ${out.records.map((x) => x.id).join(' ')}`)
    return f
  }
  return { ...r, out, byId }
}
/** An IPv4-only server (--address 10.0.0.1): no AAAA. */
const ALL = zoneRecordIds({ ipv6: false })

// Generous: every step runs the CLI (a cold start each), and the shared CI machine may be busy.
describe('chatmail dns --check', { timeout: 300_000 }, () => {
  test('an empty zone: every missing record at once, each with the line to set (exit 1)', async () => {
    await dns.setZone('one.test', '')
    const r = await check()
    expect(r.code, r.stderr).toBe(1)
    expect(r.out.status).toBe('fail')
    expect(r.out.records.map((x) => x.id)).toEqual(ALL)
    expect(r.out.records.filter((x) => x.status !== 'missing')).toEqual([])
    expect(r.byId('mx').fix).toEqual(['one.test. 3600 IN MX 10 one.test.'])
    expect(r.byId('caa').fix).toEqual(['one.test. 3600 IN CAA 0 issue "letsencrypt.org"'])
    expect(r.byId('tls-rpt').fix).toEqual(['_smtp._tls.one.test. 3600 IN TXT "v=TLSRPTv1; rua=mailto:admin@one.test"'])
    expect(r.byId('dkim').fix?.[0]).toMatch(/^opendkim\._domainkey\.one\.test\. 3600 IN TXT \( "v=DKIM1; k=rsa; p=MII/)
    // The text report lists the same, one line each, with "set:" lines.
    const text = await runCli(['dns', '--check', ...base(), '--nameserver', dns.server], { cwd: dir })
    expect(text.code).toBe(1)
    expect(text.stdout.match(/^ {2}missing/gm)?.length).toBe(ALL.length)
    expect(text.stdout).toContain('set:  one.test. 3600 IN MX 10 one.test.')
    expect(text.stdout).toMatch(/13 missing of 13 \(\* recommended\)/)
  })

  test('after loading what --zonefile printed: all ok (exit 0)', async () => {
    const w = await runCli(['dns', ...base(), '--zonefile', 'one.zone'], { cwd: dir })
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout).toBe('')
    const zone = readFileSync(join(dir, 'one.zone'), 'utf8')
    await dns.setZone('one.test', zone)
    const r = await check()
    expect(r.out.records.filter((x) => x.status !== 'ok')).toEqual([])
    expect(r.code).toBe(0)
    expect(r.out.status).toBe('ok')
    const text = await runCli(['dns', '--check', ...base(), '--nameserver', dns.server], { cwd: dir })
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`all ${ALL.length} records ok`)
  })

  test('wrong values are named with what is there and what to set', async () => {
    const zone = readFileSync(join(dir, 'one.zone'), 'utf8')
    const other = await runCli(
      ['dns', '--offline', '--address', '10.0.0.1', '--dkim-key', 'other.pem', '--zonefile', '-'],
      {
        cwd: dir,
      },
    )
    const otherDkim =
      other.stdout.split('\n; DMARC')[0]?.split('; DKIM: the key its outgoing mail is signed with\n')[1] ?? ''
    expect(otherDkim).toMatch(/^opendkim\._domainkey/)
    const broken = zone
      .replace('one.test. 3600 IN A 10.0.0.1', 'one.test. 3600 IN A 10.0.0.1\none.test. 3600 IN A 10.0.0.99')
      .replace(/opendkim\._domainkey[^)]*\)/, otherDkim.trim())
      .replace('p=reject; adkim=s; aspf=s', 'p=none')
      .replace('"v=spf1 a ~all"', '"v=spf1 a ~all"\none.test. 3600 IN TXT "v=spf1 mx -all"')
      .replace('CAA 0 issue "letsencrypt.org"', 'CAA 0 issue "pki.goog"')
      .replace('SRV 0 1 465 one.test.', 'SRV 0 1 4650 one.test.')
      .replace('mta-sts.one.test. 3600 IN CNAME one.test.', 'mta-sts.one.test. 3600 IN A 10.0.0.7')
      .replace(
        /_mta-sts\.one\.test\. 3600 IN TXT "v=STSv1; id=[a-z0-9]+"/,
        '_mta-sts.one.test. 3600 IN TXT "v=STSv1; id=not-valid!"',
      )
    await dns.setZone('one.test', broken)
    const r = await check()
    expect(r.code).toBe(1)
    const wrong = r.out.records.filter((x) => x.status === 'wrong').map((x) => x.id)
    expect(wrong).toEqual(['a', 'spf', 'dkim', 'dmarc', 'mta-sts', 'mta-sts.name', 'srv.submissions', 'caa'])
    expect(r.byId('a').detail).toMatch(/remove 10\.0\.0\.99/)
    expect(r.byId('spf').detail).toMatch(/2 SPF records/)
    expect(r.byId('dkim').detail).toMatch(/not the server's/)
    expect(r.byId('dmarc').detail).toMatch(/p=none/)
    expect(r.byId('mta-sts.name').detail).toMatch(/10\.0\.0\.7, not the server/)
    // A CAA that keeps the CA out is as bad as a missing required record.
    expect(r.byId('caa')).toMatchObject({ level: 'required', fix: ['one.test. 3600 IN CAA 0 issue "letsencrypt.org"'] })
    expect(r.byId('dkim').fix?.[0]).toMatch(/^opendkim\._domainkey\.one\.test\. 3600 IN TXT/)
    expect(r.out.records.filter((x) => x.status === 'ok').map((x) => x.id)).toEqual([
      'mx',
      'tls-rpt',
      'srv.imaps',
      'srv.imap',
      'srv.submission',
    ])
  })

  test('CNAMEs: to the right records is right (also into another zone); a CNAME at the mail domain is wrong', async () => {
    const zone = readFileSync(join(dir, 'one.zone'), 'utf8')
    const dkim = /opendkim\._domainkey\.one\.test\. 3600 IN (TXT \([^)]*\))/.exec(zone)?.[1] as string
    await dns.setZone('keys.test', `key1.keys.test. 3600 IN ${dkim}\nweb.keys.test. 3600 IN CNAME one.test.`)
    const viaCname = zone
      .replace(/opendkim\._domainkey[^)]*\)/, 'opendkim._domainkey.one.test. 3600 IN CNAME key1.keys.test.')
      .replace('mta-sts.one.test. 3600 IN CNAME one.test.', 'mta-sts.one.test. 3600 IN CNAME web.keys.test.')
      .concat('chat.one.test. 3600 IN CNAME one.test.\n')
    await dns.setZone('one.test', viaCname)
    const r = await check()
    expect(r.byId('dkim')).toMatchObject({ status: 'ok' })
    expect(r.byId('dkim').detail).toMatch(/via CNAME key1\.keys\.test/)
    expect(r.byId('mta-sts.name')).toMatchObject({ status: 'ok' })
    expect(r.code).toBe(0)
    // A mail domain that is itself a CNAME cannot carry MX and TXT records.
    const sub = await runCli(
      ['dns', 'chat.one.test', '--check', '--address', '10.0.0.1', '--nameserver', dns.server, '--json'],
      {
        cwd: dir,
      },
    )
    const a = (JSON.parse(sub.stdout).records as Finding[]).find((x) => x.id === 'a')
    expect(a).toMatchObject({ status: 'wrong' })
    expect(a?.detail).toMatch(/chat\.one\.test is a CNAME \(to one\.test\)/)
    expect(sub.code).toBe(1)
  })

  test('could not run: one line, exit 3 (and the JSON error shape); usage errors exit 2', async () => {
    const none = await runCli(['dns', '--check', ...base(), '--nameserver', '127.0.0.1:9', '--timeout', '1'], {
      cwd: dir,
    })
    expect(none.code).toBe(3)
    const lines = none.stderr.trim().split('\n')
    expect(lines[0]).toBe('chatmail: asking 127.0.0.1:9')
    expect(lines[1]).toMatch(/^chatmail: .*127\.0\.0\.1:9 did not answer/)
    expect(none.stderr).not.toMatch(/\n\s+at /)
    const json = await runCli(
      ['dns', '--check', ...base(), '--nameserver', '127.0.0.1:9', '--timeout', '1', '--json'],
      {
        cwd: dir,
      },
    )
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'error', error: { exitCode: 3 } })
    expect((await runCli(['dns', '--check', '--nameserver', 'ns.example', '--offline'], { cwd: dir })).code).toBe(2)
    const ip = await runCli(['dns', '192.0.2.7', '--offline'], { cwd: dir })
    expect(ip.code).toBe(2)
    expect(ip.stderr).toMatch(/IP-only server/)
    expect((await runCli(['dns', '--address', 'nope', '--offline'], { cwd: dir })).code).toBe(2)
  })
})
