/** iroh-relay.service gets chatmail-metadata's sandbox; nginx names no version (issue 9 item 10). */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import type { FileResource } from '../../src/deploy/resources.js'
import { buildTestStack } from '../helpers/stack.js'

const files = async () => {
  const spec = await buildTestStack(
    buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot' }),
  )
  const byPath = new Map<string, string>()
  for (const r of spec.resources)
    if (r.kind === 'file') byPath.set((r as FileResource).path, (r as FileResource).content)
  return byPath
}

/** The [Service] settings of a unit, each key with all its values. */
const serviceSettings = (unit: string): Map<string, string[]> => {
  const out = new Map<string, string[]>()
  let inService = false
  for (const line of unit.split('\n')) {
    if (/^\[.*\]$/.test(line)) inService = line === '[Service]'
    const m = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (inService && m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), m[2] as string])
  }
  return out
}

// What the metadata unit has that the relay must not copy: it has no network at all, and it is
// started with a runtime directory and dovecot ordering of its own.
const NOT_SANDBOX = new Set([
  'Type',
  'User',
  'Group',
  'ExecStartPre',
  'ExecStart',
  'ExecReload',
  'Restart',
  'RestartSec',
])
const DIFFERENT = new Set(['PrivateNetwork', 'RestrictAddressFamilies', 'RuntimeDirectory', 'RuntimeDirectoryMode'])

describe('iroh-relay.service', () => {
  it('has every sandbox setting of chatmail-metadata.service, with the network it needs', async () => {
    const f = await files()
    const metadata = serviceSettings(f.get('/etc/systemd/system/chatmail-metadata.service') as string)
    const relay = serviceSettings(f.get('/etc/systemd/system/iroh-relay.service') as string)
    for (const [key, values] of metadata) {
      if (NOT_SANDBOX.has(key) || DIFFERENT.has(key)) continue
      expect(relay.get(key), key).toBeDefined()
      if (!['MemoryMax', 'TasksMax'].includes(key)) expect(relay.get(key)?.[0], key).toBe(values[0])
    }
    expect(relay.get('CapabilityBoundingSet')).toEqual([''])
    expect(relay.get('AmbientCapabilities')).toEqual([''])
    expect(relay.get('RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX'])
    expect(relay.get('LimitNOFILE')).toEqual(['65536'])
    expect(relay.get('MemoryMax')).toEqual(['512M'])
    expect(relay.get('User')).toEqual(['iroh-relay'])
    expect(relay.has('PrivateNetwork')).toBe(false)
  })
})

describe('nginx', () => {
  it('sends no version (server_tokens off in every server: Debian 13 sets it in the http context already)', async () => {
    const conf = (await files()).get('/etc/nginx/conf.d/chatmail.conf') as string
    expect(conf).not.toMatch(/^server_tokens/m)
    const servers = conf.split(/^server \{$/m).slice(1)
    expect(servers.length).toBeGreaterThan(0)
    for (const s of servers) expect(s).toMatch(/^ {4}server_tokens off;$/m)
  })
})

describe('chatmail-accounts.service', () => {
  it('holds one supplementary group, to read the passwd-files dovecot asks first; each group socket is born in a setgid directory of its group', async () => {
    const f = await files()
    const unit = serviceSettings(f.get('/etc/systemd/system/chatmail-accounts.service') as string)
    expect(unit.get('SupplementaryGroups')).toEqual(['dovecot'])
    const conf0 = f.get('/etc/chatmail/accounts.conf') as string
    // The files it reads with that group: dovecot.conf's passdbs before it, root:dovecot 0640.
    expect(/^passwd_files = (.*)$/m.exec(conf0)?.[1]).toBe('/etc/dovecot/doctor.passwd /etc/dovecot/users')
    const passdbs = [
      ...(f.get('/etc/dovecot/dovecot.conf') as string).matchAll(
        /passdb \{\n\s*driver = passwd-file\n\s*args = .* (\S+)\n/g,
      ),
    ]
    expect(passdbs.map((m) => m[1])).toEqual(['/etc/dovecot/doctor.passwd', '/etc/dovecot/users'])
    expect(unit.get('User')).toEqual(['chatmail-accounts'])
    const conf = f.get('/etc/chatmail/accounts.conf') as string
    const setting = (key: string) => new RegExp(`^${key} = (.*)$`, 'm').exec(conf)?.[1]
    const made = (unit.get('ExecStartPre') ?? []).filter((c) => c.startsWith('+'))
    const groups = ['dict', 'socketmap', 'http', 'lastlogin'].map((s) => {
      const socket = setting(`${s}_socket`) as string
      const group = setting(`${s}_socket_group`) as string
      // Root (+) makes the directory; chatmail-accounts only binds in it and "chowns" to the group
      // the socket already has, which the kernel allows its owner without membership.
      expect(made, s).toContain(
        `+/usr/bin/install -d -o chatmail-accounts -g ${group} -m 2750 ${socket.slice(0, socket.lastIndexOf('/'))}`,
      )
      return group
    })
    expect(groups).toEqual(['dovecot', 'postfix', 'www-data', 'vmail'])
    expect(made).toHaveLength(4)
  })
})
