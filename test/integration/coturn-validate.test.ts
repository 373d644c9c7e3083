/**
 * coturn has no check mode, so the deploy validates /etc/turnserver.conf strictly before a
 * restart (turnserver_conf_ok in templates/shell/apply-lib.sh), against the real turnserver's
 * list of options.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import type { FileResource, ServiceResource } from '../../src/deploy/resources.js'
import { COTURN_FIREWALL } from '../../src/deploy/services/coturn.js'
import { buildTestStack } from '../helpers/stack.js'

const hasTurnserver = spawnSync('turnserver', ['-h']).error === undefined

describe.skipIf(!hasTurnserver)('the coturn validation step', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-turncheck-'))
  const check = (conf: string) => {
    const path = join(dir, 'turnserver.conf')
    writeFileSync(path, conf)
    return spawnSync(
      'sh',
      [
        '-c',
        `BACKUP_ROOT=${dir}/backup; . ${resolve('templates/shell/apply-lib.sh')}; turnserver_conf_ok "$1"`,
        'sh',
        path,
      ],
      { encoding: 'utf8' },
    )
  }
  const rendered = async () => {
    writeFileSync(join(dir, 'cert.pem'), 'cert\n')
    writeFileSync(join(dir, 'key.pem'), 'key\n')
    const config = buildConfig({
      path: 'x',
      force: false,
      domain: 'chat.example.org',
      profile: 'dovecot',
      tlsMode: 'manual',
      cert: join(dir, 'cert.pem'),
      key: join(dir, 'key.pem'),
    })
    const spec = await buildTestStack(config)
    const unit = spec.resources.find((r): r is ServiceResource => r.kind === 'service' && r.unit === 'coturn.service')
    expect(unit?.validate).toEqual(['turnserver_conf_ok /etc/turnserver.conf', `nft -c -f ${COTURN_FIREWALL}`])
    return spec.resources.find((r): r is FileResource => r.kind === 'file' && r.path === '/etc/turnserver.conf')!
      .content
  }

  it('passes the rendered turnserver.conf', async () => {
    const r = check(await rendered())
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
  it('passes allowed-peer-ip lines for both sides of turn.external_ip and the host addresses', async () => {
    const conf = (await rendered()).replace(
      /^# no own address known.*$/m,
      ['203.0.113.5', '10.0.0.5', '10.213.9.2', '2001:db8::2'].map((a) => `allowed-peer-ip=${a}`).join('\n'),
    )
    expect(conf).toMatch(/^allowed-peer-ip=2001:db8::2$/m)
    const r = check(conf)
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
  it('refuses a directive turnserver does not know, naming the line', async () => {
    const r = check(`${await rendered()}relay-everything=yes\n`)
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/turnserver\.conf line \d+: turnserver has no option "relay-everything"/)
  })
  it('refuses a certificate or key that cannot be read', async () => {
    const r = check((await rendered()).replace(/^cert=.*$/m, 'cert=/nonexistent/cert.pem'))
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/line \d+: cannot read cert \/nonexistent\/cert\.pem/)
  })
})

const hasNft = spawnSync('nft', ['--version']).error === undefined

/** `nft -c` in a network namespace of its own: the check reaches the kernel, and changes nothing here. */
describe.skipIf(!hasNft)('the relay firewall validation step (nft -c -f)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-nftcheck-'))
  const check = (text: string) => {
    const path = join(dir, 'coturn-relay.nft')
    writeFileSync(path, text)
    return spawnSync('unshare', ['--net', 'nft', '-c', '-f', path], { encoding: 'utf8' })
  }
  const rendered = async (externalIp?: string) => {
    const config = buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot' })
    const spec = await buildTestStack({ ...config, turn: { ...config.turn, ...(externalIp ? { externalIp } : {}) } })
    return spec.resources.find((r): r is FileResource => r.kind === 'file' && r.path === COTURN_FIREWALL)!.content
  }

  it.each([
    ['no turn.external_ip', undefined],
    ['a 1:1 NAT', '203.0.113.5/10.0.0.5'],
    ['an IPv6 address', '2001:db8::5'],
  ])('passes the rendered table (%s)', async (_, ip) => {
    const r = check(await rendered(ip))
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
  it('refuses a broken one', async () => {
    const r = check((await rendered()).replace('fib daddr type local', 'fib daddr type lokal'))
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/lokal/)
  })
})
