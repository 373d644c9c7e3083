import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import type { CommandResource, FileResource, Resource, ServiceResource } from '../../src/deploy/resources.js'
import { buildZone, zoneInputFor } from '../../src/dns/index.js'
import {
  certificateNamesFor,
  DKIM,
  dkimEnabled,
  mtaStsEnabled,
  mtaStsId,
  mtaStsIdFor,
  mtaStsPolicy,
} from '../../src/server/federation.js'
import { buildTestStack } from '../helpers/stack.js'

const config = (domain: string, extra: Partial<Parameters<typeof buildConfig>[0]> = {}) =>
  buildConfig({ path: 'x', force: false, domain, profile: 'dovecot', ...extra })

const fileAt = (rs: Resource[], path: string) => rs.find((r): r is FileResource => r.kind === 'file' && r.path === path)
const commandOf = (rs: Resource[], id: string) =>
  rs.find((r): r is CommandResource => r.kind === 'command' && r.id === id)
const unitOf = (rs: Resource[], unit: string) =>
  rs.find((r): r is ServiceResource => r.kind === 'service' && r.unit === unit)

describe('federation records (pure)', () => {
  it('MTA-STS: the policy, and an id that changes exactly when the policy does', () => {
    expect(mtaStsPolicy('chat.example.org')).toBe(
      'version: STSv1\nmode: enforce\nmx: chat.example.org\nmax_age: 2419200\n',
    )
    const id = mtaStsId(mtaStsPolicy('chat.example.org'))
    expect(id).toMatch(/^[a-z0-9]{1,32}$/)
    expect(mtaStsId(mtaStsPolicy('chat.example.org'))).toBe(id)
    expect(mtaStsId(mtaStsPolicy('other.example.org'))).not.toBe(id)
    expect(mtaStsId(mtaStsPolicy('chat.example.org').replace('enforce', 'testing'))).not.toBe(id)
    expect(mtaStsIdFor('chat.example.org')).toBe(id)
    // chatmail dns publishes exactly this id for a server deployed from the same config.
    const zone = buildZone(zoneInputFor('chat.example.org', config('chat.example.org')))
    expect(zone.find((e) => e.id === 'mta-sts')?.values).toEqual([`v=STSv1; id=${id}`])
    expect(zone.find((e) => e.id === 'dkim')?.name).toBe(`${DKIM.selector}._domainkey.chat.example.org`)
  })
  it('which servers get DKIM, MTA-STS and which names the certificate covers', () => {
    const acme = config('chat.example.org')
    expect([dkimEnabled(acme), mtaStsEnabled(acme)]).toEqual([true, true])
    expect(certificateNamesFor(acme)).toEqual(['chat.example.org', 'mta-sts.chat.example.org'])
    const selfSigned = config('chat.example.org', { tlsMode: 'self-signed' })
    expect([dkimEnabled(selfSigned), mtaStsEnabled(selfSigned)]).toEqual([true, false])
    expect(certificateNamesFor(selfSigned)).toEqual(['chat.example.org'])
    const ip = config('203.0.113.5')
    expect([dkimEnabled(ip), mtaStsEnabled(ip)]).toEqual([false, false])
  })
})

describe('the stack: opendkim, postfix milters, MTA-STS', () => {
  it('makes the DKIM key on the host once, private to opendkim, never in a managed file', async () => {
    const spec = await buildTestStack(config('chat.example.org'))
    const key = commandOf(spec.resources, 'command:dkim-key')!
    // Kept: the command runs only when there is no key; a deploy never rewrites or reads it.
    expect(key.unless).toBe(`grep -q 'PRIVATE KEY' ${DKIM.privateKey}`)
    expect(key.run).toMatch(
      /^umask 077 && opendkim-genkey -b 2048 -D \/etc\/dkimkeys -d chat\.example\.org -s opendkim/,
    )
    expect(key.run).toContain(`chmod 0600 ${DKIM.privateKey}`)
    expect(key.run).toContain(`chown opendkim:opendkim ${DKIM.privateKey}`)
    expect(spec.resources.some((r) => r.kind === 'file' && r.path.startsWith('/etc/dkimkeys/'))).toBe(false)
    const dir = spec.resources.find((r) => r.id === 'dir:/etc/dkimkeys')
    expect(dir).toMatchObject({ owner: 'opendkim', group: 'opendkim', mode: '0700' })
    expect(spec.resources.find((r) => r.id === `dir:${DKIM.socketDir}`)).toMatchObject({
      owner: 'opendkim',
      group: 'postfix',
      mode: '2750',
    })
  })
  it('signs what postfix marks ORIGINATING, verifies port 25 and refuses unaligned or broken signatures', async () => {
    const spec = await buildTestStack(config('chat.example.org'))
    const conf = fileAt(spec.resources, '/etc/opendkim.conf')!.content
    for (const line of [
      'Domain                  chat.example.org',
      'Selector                opendkim',
      'KeyFile                 /etc/dkimkeys/opendkim.private',
      'MTA                     ORIGINATING',
      'InternalHosts           -',
      `Socket                  local:${DKIM.socket}`,
      'ScreenPolicyScript      /etc/opendkim/screen.lua',
      'FinalPolicyScript       /etc/opendkim/final.lua',
      'On-NoSignature          reject',
      'On-BadSignature         reject',
    ]) {
      expect(conf).toContain(`\n${line}\n`)
    }
    // DNSSEC: keys are validated from the root's trust anchor, the file Debian's dns-root-data ships.
    expect(conf).toContain('\nTrustAnchorFile         /usr/share/dns/root.key\n')
    expect(conf).toContain('\nResolverConfiguration   /etc/opendkim/resolver.conf\n')
    // The resolver settings are the operator's: created once, never rewritten.
    expect(fileAt(spec.resources, '/etc/opendkim/resolver.conf')).toMatchObject({ data: true })
    const final = fileAt(spec.resources, '/etc/opendkim/final.lua')!.content
    expect(final).toContain('odkim.set_result(ctx, SMFIS_REJECT)')
    expect(final).toContain('odkim.get_mtasymbol(ctx, "{daemon_name}") ~= "VERIFYING"')
    expect(fileAt(spec.resources, '/etc/opendkim/screen.lua')!.content).toContain('odkim.sig_ignore(sig)')
    const unit = unitOf(spec.resources, 'opendkim.service')!
    expect(unit.validate).toEqual(['opendkim -n -x /etc/opendkim.conf'])
    expect(unit.restartOn.map((r) => r.id).sort()).toEqual(
      ['file:/etc/opendkim.conf', 'file:/etc/opendkim/final.lua', 'file:/etc/opendkim/screen.lua'].sort(),
    )

    const main = fileAt(spec.resources, '/etc/postfix/main.cf')!.content
    expect(main).toMatch(/^smtpd_milters = unix:chatmail-filter\/milter\.sock, unix:opendkim\/opendkim\.sock$/m)
    expect(main).toMatch(/^non_smtpd_milters = unix:opendkim\/opendkim\.sock$/m)
    expect(main).toMatch(/^milter_macro_daemon_name = ORIGINATING$/m)
    expect(main).toMatch(/^milter_default_action = tempfail$/m)
    expect(main).toMatch(/^lmtp_header_checks = pcre:\/etc\/postfix\/lmtp_header_cleanup$/m)
    const master = fileAt(spec.resources, '/etc/postfix/master.cf')!.content
    expect(master).toMatch(/^smtp {6}inet .*smtpd\n {2}-o milter_macro_daemon_name=VERIFYING\n/m)
    expect(fileAt(spec.resources, '/etc/postfix/lmtp_header_cleanup')!.content).toMatch(
      /^\/\^DKIM-Signature:\/i IGNORE$/m,
    )
  })
  it('an IP-only server has no DKIM and no MTA-STS', async () => {
    const spec = await buildTestStack(config('203.0.113.5'))
    expect(spec.resources.some((r) => r.id === 'package:opendkim' || r.id === 'command:dkim-key')).toBe(false)
    expect(unitOf(spec.resources, 'opendkim.service')).toBeUndefined()
    const main = fileAt(spec.resources, '/etc/postfix/main.cf')!.content
    expect(main).toMatch(/^smtpd_milters = unix:chatmail-filter\/milter\.sock$/m)
    expect(main).not.toMatch(/opendkim|non_smtpd_milters/)
    expect(fileAt(spec.resources, '/etc/nginx/conf.d/mta-sts.conf')).toBeUndefined()
  })
  it('serves the MTA-STS policy on mta-sts.DOMAIN and gets a certificate for every name of the zone', async () => {
    const c = config('chat.example.org')
    const spec = await buildTestStack(c)
    expect(fileAt(spec.resources, '/var/www/mta-sts/.well-known/mta-sts.txt')!.content).toBe(
      mtaStsPolicy('chat.example.org'),
    )
    const sts = fileAt(spec.resources, '/etc/nginx/conf.d/mta-sts.conf')!
    expect(sts.content).toMatch(/^ {4}server_name mta-sts\.chat\.example\.org;$/m)
    expect(sts.content).toContain('location = /.well-known/mta-sts.txt')
    expect(unitOf(spec.resources, 'nginx.service')!.restartOn.map((r) => r.id)).toContain(sts.id)
    const nginx = fileAt(spec.resources, '/etc/nginx/conf.d/chatmail.conf')!.content
    expect(nginx).toContain('server_name chat.example.org mta-sts.chat.example.org;')
    expect(nginx).toMatch(/listen 443 ssl;\n.*\n {4}server_name chat\.example\.org;/)
    const acme = commandOf(spec.resources, 'command:acme-certificate')!
    expect(acme.run).toContain(
      '-d chat.example.org -d mta-sts.chat.example.org --server https://acme-v02.api.letsencrypt.org/directory',
    )
    expect(acme.run).toContain('--renew-with-new-domains')
    for (const n of certificateNamesFor(c)) expect(acme.unless).toContain(`-checkhost ${n} | grep -q 'does match'`)

    const selfSigned = await buildTestStack(config('chat.example.org', { tlsMode: 'self-signed' }))
    expect(fileAt(selfSigned.resources, '/etc/nginx/conf.d/mta-sts.conf')).toBeUndefined()
    expect(fileAt(selfSigned.resources, '/etc/nginx/conf.d/chatmail.conf')!.content).toContain(
      'server_name chat.example.org;',
    )
  })
})
