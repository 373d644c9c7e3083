/**
 * What the rendered turnserver.conf and the relay firewall table hold (issue 9 item 6, issue 25);
 * coturn-hardening.test.ts and coturn-relay.test.ts run them on a real coturn.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import type { Config } from '../../src/config/schema.js'
import type { DeploySpec, FileResource, ServiceResource } from '../../src/deploy/resources.js'
import type { HostInfo } from '../../src/deploy/service.js'
import { COTURN_DROPIN, COTURN_FIREWALL } from '../../src/deploy/services/coturn.js'
import { BOOKWORM, buildTestStack } from '../helpers/stack.js'

const base = buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot' })
const fileAt = (spec: DeploySpec, path: string) =>
  spec.resources.find((r): r is FileResource => r.kind === 'file' && r.path === path) as FileResource
const turnserverConf = async (config: Config, host?: HostInfo) =>
  fileAt(await buildTestStack(config, host ? { host } : {}), '/etc/turnserver.conf').content
const allowed = (conf: string) =>
  conf
    .split('\n')
    .filter((l) => l.startsWith('allowed-peer-ip='))
    .map((l) => l.slice('allowed-peer-ip='.length))
const rules = (nft: string) =>
  nft
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('meta skuid'))

describe('turnserver.conf', () => {
  it('has the hardening options (all known to coturn 4.6.1, Debian 12 and 13)', async () => {
    const conf = await turnserverConf(base)
    for (const line of [
      'no-tcp-relay',
      'user-quota=12',
      'total-quota=1200',
      'max-bps=1000000',
      'stale-nonce=600',
      'no-rfc5780',
      'no-stun-backward-compatibility',
      'response-origin-only-with-rfc5780',
      'no-multicast-peers',
      'denied-peer-ip=::ffff:0:0-::ffff:ffff:ffff',
      'denied-peer-ip=64:ff9b::-64:ff9b::ffff:ffff',
      'denied-peer-ip=2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'denied-peer-ip=2001::-2001:0:ffff:ffff:ffff:ffff:ffff:ffff',
      'denied-peer-ip=::',
      'denied-peer-ip=240.0.0.0-255.255.255.255',
    ]) {
      expect(conf.split('\n'), line).toContain(line)
    }
    expect(conf).not.toMatch(/^(allow-loopback-peers|allowed-peer-ip|no-auth|bps-capacity)/m)
  })
  it("allows the host's own addresses as peers (relay to relay): both sides of turn.external_ip and its addresses", async () => {
    const nat = await turnserverConf({ ...base, turn: { ...base.turn, externalIp: '203.0.113.5/10.0.0.5' } })
    expect(nat).toMatch(/^external-ip=203\.0\.113\.5\/10\.0\.0\.5$/m)
    expect(allowed(nat)).toEqual(['203.0.113.5', '10.0.0.5'])
    const direct = await turnserverConf({ ...base, turn: { ...base.turn, externalIp: '198.51.7.9' } })
    expect(allowed(direct)).toEqual(['198.51.7.9'])
    const testHost = await turnserverConf(base, { ...BOOKWORM, addresses: ['10.213.9.2', '2001:db8::2'] })
    expect(allowed(testHost)).toEqual(['10.213.9.2', '2001:db8::2'])
    expect(await turnserverConf(base)).not.toMatch(/^external-ip/m)
    // Every denied range stays; none of them is the host's own any more.
    expect(nat.split('\n').filter((l) => l.startsWith('denied-peer-ip=')).length).toBe(25)
    expect(nat).not.toMatch(/^denied-peer-ip=(203\.0\.113\.5|10\.0\.0\.5)$/m)
  })
})

describe('the relay firewall table and its drop-in', () => {
  it('lets datagrams the turnserver user relays reach this host only on the relay ports', async () => {
    const spec = await buildTestStack({ ...base, turn: { ...base.turn, externalIp: '203.0.113.5/10.0.0.5' } })
    const nft = fileAt(spec, COTURN_FIREWALL).content
    expect(rules(nft)).toEqual([
      'meta skuid turnserver udp sport 49152-65535 fib daddr type local udp dport != 49152-65535 counter drop',
      'meta skuid turnserver udp sport 49152-65535 ip daddr 203.0.113.5 udp dport != 49152-65535 counter drop',
    ])
    expect(nft).toMatch(
      /^table inet chatmail_coturn\ndelete table inet chatmail_coturn\ntable inet chatmail_coturn \{$/m,
    )
    const v6 = fileAt(
      await buildTestStack({ ...base, turn: { ...base.turn, externalIp: '2001:db8::5' } }),
      COTURN_FIREWALL,
    )
    expect(rules(v6.content)[1]).toBe(
      'meta skuid turnserver udp sport 49152-65535 ip6 daddr 2001:db8::5 udp dport != 49152-65535 counter drop',
    )
    expect(rules(fileAt(await buildTestStack(base), COTURN_FIREWALL).content)).toHaveLength(1)
    // The relay ports of the table are coturn's.
    const conf = fileAt(spec, '/etc/turnserver.conf').content
    expect(conf).toMatch(/^min-port=49152$/m)
    expect(conf).toMatch(/^max-port=65535$/m)
  })

  it('is loaded before coturn starts, and a change restarts coturn after nft checked it', async () => {
    const spec = await buildTestStack(base)
    expect(fileAt(spec, COTURN_DROPIN).content).toMatch(
      /^ExecStartPre=\+\/usr\/sbin\/nft -f \/etc\/chatmail\/coturn-relay\.nft$/m,
    )
    const unit = spec.resources.find((r): r is ServiceResource => r.kind === 'service' && r.unit === 'coturn.service')
    expect(unit?.validate).toContain(`nft -c -f ${COTURN_FIREWALL}`)
    const triggers = (unit?.restartOn ?? []).map((t) => (t as FileResource).path)
    expect(triggers).toEqual(expect.arrayContaining(['/etc/turnserver.conf', COTURN_FIREWALL, COTURN_DROPIN]))
    expect(spec.resources.some((r) => r.kind === 'package' && r.name === 'nftables')).toBe(true)
  })
})
