/**
 * Destination + flags + ~/.ssh/config → a resolved target, as ssh resolves it (issue 15).
 * Real files in a temporary HOME; no network.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { describeTarget, planIdentities, resolveTarget } from '../../src/ssh/index.js'

let home: string
const savedHome = process.env.HOME
const savedSock = process.env.SSH_AUTH_SOCK

const CONFIG = `# a typical operator's config
Host myserver
  HostName 203.0.113.5
  User admin
  Port 2222
  IdentityFile ~/.ssh/deploy_key
  IdentitiesOnly yes
  UserKnownHostsFile ~/.ssh/known_hosts.d/%h
  ProxyJump bastion

Host bastion
  HostName 198.51.100.7
  User jump
  ProxyJump outer

Host outer
  HostName 192.0.2.1
  Port 2200

Host *.example.org !secret.example.org
  User ops

Host strict
  HostName 192.0.2.9
  StrictHostKeyChecking yes

Host loose
  HostName 192.0.2.10
  StrictHostKeyChecking no

Host sub
  Include conf.d/*.conf

Host *
  User fallback
  Port 2022
`

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'ssh-resolve-'))
  process.env.HOME = home
  delete process.env.SSH_AUTH_SOCK
  mkdirSync(join(home, '.ssh', 'conf.d'), { recursive: true })
  writeFileSync(join(home, '.ssh', 'config'), CONFIG)
  writeFileSync(join(home, '.ssh', 'conf.d', 'a.conf'), 'HostName 192.0.2.77\n')
})
afterAll(() => {
  process.env.HOME = savedHome
  if (savedSock) process.env.SSH_AUTH_SOCK = savedSock
})

describe('resolveTarget', () => {
  test('an alias: HostName, User, Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile, ProxyJump chain', async () => {
    const t = await resolveTarget('myserver')
    expect(t).toMatchObject({
      name: 'myserver',
      host: '203.0.113.5',
      user: 'admin',
      port: 2222,
      identityFiles: [join(home, '.ssh', 'deploy_key')],
      defaultIdentities: false,
      identitiesOnly: true,
      knownHostsFiles: [join(home, '.ssh', 'known_hosts.d', '203.0.113.5')],
      hostKeyPolicy: 'strict',
      configFile: join(home, '.ssh', 'config'),
    })
    // bastion's own ProxyJump (outer) comes first; a jump host's user defaults to the local user.
    expect(t.jumps.map((j) => [j.host, j.port, j.user])).toEqual([
      ['192.0.2.1', 2200, expect.any(String)],
      ['198.51.100.7', 2022, 'jump'],
    ])
    expect(describeTarget(t)).toMatch(
      /^myserver \(admin@203\.0\.113\.5:2222 via .+@192\.0\.2\.1:2200, jump@198\.51\.100\.7:2022\)$/,
    )
  })

  test('the command line wins over the config; -i comes first; --known-hosts replaces the config files', async () => {
    const t = await resolveTarget('root@myserver:2200', { identity: '~/other', knownHosts: '/tmp/kh' })
    expect(t).toMatchObject({ user: 'root', port: 2200, host: '203.0.113.5', knownHostsFiles: ['/tmp/kh'] })
    expect(t.identityFiles).toEqual([join(home, 'other'), join(home, '.ssh', 'deploy_key')])
  })

  test('patterns: wildcards, negation, Host * defaults, first value wins, Include inside a block', async () => {
    expect(await resolveTarget('mail.example.org')).toMatchObject({ user: 'ops', port: 2022, host: 'mail.example.org' })
    expect(await resolveTarget('secret.example.org')).toMatchObject({ user: 'fallback' })
    expect(await resolveTarget('sub')).toMatchObject({ host: '192.0.2.77' })
    const plain = await resolveTarget('10.0.0.1', { sshConfig: 'none' })
    expect(plain).toMatchObject({ user: 'root', port: 22, defaultIdentities: true, jumps: [], configFile: undefined })
    expect(plain.knownHostsFiles).toEqual([join(home, '.ssh', 'known_hosts'), join(home, '.ssh', 'known_hosts2')])
  })

  test('StrictHostKeyChecking only makes checking stricter', async () => {
    const strict = await resolveTarget('strict', { acceptNewHostKey: true })
    expect(strict.hostKeyPolicy).toBe('strict')
    expect(strict.strictBy).toEqual({ file: join(home, '.ssh', 'config'), line: 25 })
    const loose = await resolveTarget('loose')
    expect(loose.hostKeyPolicy).toBe('strict')
    expect(loose.notes.join('\n')).toMatch(/line 29: StrictHostKeyChecking no is not followed; chatmail always checks/)
  })

  test('-F FILE is read instead of ~/.ssh/config; a missing -F file is an error', async () => {
    const f = join(home, 'other_config')
    writeFileSync(f, 'Host x\n  HostName 192.0.2.5\n  ProxyJump a@j1:2201,ssh://j2\n')
    const t = await resolveTarget('x', { sshConfig: f })
    expect(t.host).toBe('192.0.2.5')
    expect(t.jumps.map((j) => `${j.user}@${j.host}:${j.port}`)).toEqual(['a@j1:2201', expect.stringMatching(/@j2:22$/)])
    await expect(resolveTarget('x', { sshConfig: join(home, 'nope') })).rejects.toThrow(
      /cannot read SSH config .*nope: no such file/,
    )
  })
})

describe('identities in OpenSSH order', () => {
  test('default files in OpenSSH order (id_rsa, id_ecdsa, …, id_ed25519) after -i', async () => {
    for (const [name, type] of [
      ['id_ed25519', 'ed25519'],
      ['id_rsa', 'rsa'],
      ['explicit', 'ed25519'],
    ] as const) {
      execFileSync('ssh-keygen', [
        '-q',
        '-t',
        type,
        ...(type === 'rsa' ? ['-b', '2048'] : []),
        '-N',
        '',
        '-f',
        join(home, '.ssh', name),
      ])
    }
    const noFlag = await resolveTarget('10.0.0.1', { sshConfig: 'none' })
    expect((await planIdentities(noFlag, undefined)).map((s) => s.label)).toEqual([
      '~/.ssh/id_rsa',
      '~/.ssh/id_ed25519',
    ])
    const withI = await resolveTarget('10.0.0.1', { sshConfig: 'none', identity: join(home, '.ssh', 'explicit') })
    // ssh adds no default file once one is named.
    expect((await planIdentities(withI, withI.identityFiles[0])).map((s) => s.label)).toEqual(['~/.ssh/explicit'])
    await expect(
      planIdentities({ ...withI, identityFiles: [join(home, 'missing')] }, join(home, 'missing')),
    ).rejects.toThrow(/cannot read SSH key .*missing: no such file/)
  })

  test('nothing to try: one clear line and what to do', async () => {
    const empty = await resolveTarget('10.0.0.1', { sshConfig: 'none' })
    const err = (await planIdentities({ ...empty, identityFiles: [], defaultIdentities: false }, undefined).catch(
      (e: Error & { hint?: string }) => e,
    )) as Error
    expect(err.message).toMatch(/^no SSH key to log in to 10\.0\.0\.1 with: no -i, no ssh-agent running/)
    expect((err as { hint?: string }).hint).toMatch(/ssh-add|ssh-keygen/)
  })
})

describe('ssh_config details', () => {
  test('Match host/user/all apply; Match exec is never run and is reported; ProxyCommand is reported as ignored', async () => {
    const f = join(home, 'match_config')
    writeFileSync(
      f,
      [
        'Match host 192.0.2.* user root',
        '  Port 2201',
        `Match exec "touch ${join(home, 'ran')}"`,
        '  Port 2202',
        'Host m',
        '  HostName 192.0.2.8',
        '  ProxyCommand nc %h %p',
        'Match all',
        '  IdentityFile ~/.ssh/%h_%r_%p',
        '',
      ].join('\n'),
    )
    const t = await resolveTarget('m', { sshConfig: f })
    // Match host sees the HostName only once it is set: the first Match ran before `Host m`.
    expect(t.port).toBe(22)
    expect(t.identityFiles).toEqual([join(home, '.ssh', '192.0.2.8_root_22')])
    expect(t.notes.join('\n')).toMatch(/line 3: Match exec is not supported; that block is not applied/)
    expect(t.notes.join('\n')).toMatch(/line 7: proxycommand is not supported by chatmail and is ignored/)
    expect(existsSync(join(home, 'ran'))).toBe(false)
    const direct = await resolveTarget('root@192.0.2.3', { sshConfig: f })
    expect(direct.port).toBe(2201)
  })

  test('a config that does not parse names the file', async () => {
    const f = join(home, 'broken_config')
    writeFileSync(f, 'Host x\n  HostName "unterminated\n')
    await expect(resolveTarget('x', { sshConfig: f })).rejects.toThrow(/cannot parse SSH config .*broken_config/)
  })
})
