/** What the rendered turnserver.conf holds (issue 9 item 6); coturn-hardening.test.ts runs it. */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import type { Config } from '../../src/config/schema.js'
import type { FileResource } from '../../src/deploy/resources.js'
import { buildTestStack } from '../helpers/stack.js'

const base = buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot' })
const turnserverConf = async (config: Config) => {
  const spec = await buildTestStack(config)
  return (
    spec.resources.find((r) => r.kind === 'file' && (r as FileResource).path === '/etc/turnserver.conf') as FileResource
  ).content
}

describe('turnserver.conf', () => {
  it('has the hardening options (all known to coturn 4.6.1, Debian 12 and 13)', async () => {
    const conf = await turnserverConf(base)
    for (const line of [
      'no-tcp-relay',
      'user-quota=12',
      'total-quota=1200',
      'max-bps=1000000',
      'bps-capacity=50000000',
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
    expect(conf).not.toMatch(/^(allow-loopback-peers|allowed-peer-ip|no-auth)/m)
  })
  it("denies the host's own addresses named by turn.external_ip", async () => {
    const nat = await turnserverConf({ ...base, turn: { ...base.turn, externalIp: '203.0.113.5/10.0.0.5' } })
    expect(nat).toMatch(/^external-ip=203\.0\.113\.5\/10\.0\.0\.5$/m)
    expect(nat).toMatch(/^denied-peer-ip=203\.0\.113\.5$/m)
    expect(nat).toMatch(/^denied-peer-ip=10\.0\.0\.5$/m)
    const direct = await turnserverConf({ ...base, turn: { ...base.turn, externalIp: '198.51.7.9' } })
    expect(direct).toMatch(/^denied-peer-ip=198\.51\.7\.9$/m)
    expect(await turnserverConf(base)).not.toMatch(/^external-ip/m)
  })
})
