import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { factsScript, normalizeMode, parseFacts, parseListener } from '../../src/deploy/facts.js'
import { binary, directory, file, pkg, service, user } from '../../src/deploy/resources.js'
import { hostShell } from '../../src/lib/host-shell.js'

describe('facts', () => {
  test('parses listen records (ss -Htuln -e) and their holders (names in hex)', () => {
    expect(parseListener('tcp', '0.0.0.0:22')).toEqual({ proto: 'tcp', address: '0.0.0.0', port: 22, processes: [] })
    expect(parseListener('udp', '[::]:3478')).toMatchObject({ proto: 'udp', address: '::', port: 3478 })
    expect(parseListener('tcp', '127.0.0.1%lo:25')?.address).toBe('127.0.0.1')
    expect(parseListener('garbage', '1:2')).toBeUndefined()
    expect(parseListener('tcp', 'no-port')).toBeUndefined()
    const hex = (s: string) => Buffer.from(s).toString('hex')
    const f = parseFacts(
      [
        'uid\t0',
        'listen\tudp\t[::]:3478\t77',
        'listen\ttcp\t0.0.0.0:443\t0',
        `holder\t77\t${hex('turnserver\n')}`,
        `holder\t77\t${hex('turnserver\n')}`,
        `holder\t99\t${hex('other\n')}`,
        'holder\t77\tnot-hex',
        'end',
      ].join('\n'),
    )
    expect(f.listeners).toEqual([
      { proto: 'udp', address: '::', port: 3478, processes: ['turnserver'] },
      { proto: 'tcp', address: '0.0.0.0', port: 443, processes: [] },
    ])
  })

  // Any user names their processes (/proc/PID/comm: 15 bytes, tabs and newlines allowed); ss -p
  // printed them raw into the facts, where a name could add a record of its own.
  test('facts-host.sh on this machine: a listener named like a record forges nothing', async () => {
    const COMM = 'n\nuid\t4242\nx'
    const listener = spawn(
      process.execPath,
      [
        '-e',
        `require('fs').writeFileSync('/proc/self/comm', ${JSON.stringify(COMM)});` +
          "const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    try {
      const port = await new Promise<number>((resolve) =>
        listener.stdout?.once('data', (d) => resolve(Number(String(d)))),
      )
      const out = execFileSync('sh', ['-c', `${hostShell('facts-host.sh')}printf 'end\\n'\n`], { maxBuffer: 64 << 20 })
      const f = parseFacts(out.toString())
      expect(f.uid).toBe(process.getuid?.())
      expect(f.listeners.find((l) => l.port === port && l.address === '127.0.0.1')).toEqual({
        proto: 'tcp',
        address: '127.0.0.1',
        port,
        processes: [COMM],
      })
    } finally {
      listener.kill()
    }
  })

  test('parses every record kind', () => {
    const out = [
      'uid\t0',
      'os\tdebian\t12\tbookworm',
      'arch\tx86_64',
      'disk\t5242880',
      'addr\t10.213.0.2',
      'listen\ttcp\t0.0.0.0:22\t5',
      `file\t/etc/a.conf\t1\troot\tdovecot\t640\t6\tabc123\t${Buffer.from('hello\n').toString('base64')}`,
      'file\t/etc/secret\t1\troot\troot\t600\t10\tdef456\t',
      'file\t/etc/missing\t0',
      'file\t/etc/adir\tother',
      'dir\t/srv/x\t1\tvmail\tvmail\t700',
      'dir\t/srv/y\t0',
      'user\tvmail\t1\t/home/vmail\t/usr/sbin/nologin\tvmail mail',
      'user\tiroh\t0',
      'pkg\tdovecot-imapd\tinstalled\t1:2.3.19',
      'pkg\tpostfix\tconfig-files\t3.7',
      'unit\tnginx.service\t123456\tactive\tloaded\tenabled\t',
      'end',
    ].join('\n')
    const f = parseFacts(out)
    expect(f).toMatchObject({ uid: 0, os: { id: 'debian', versionId: '12' }, arch: 'x86_64', diskFreeKb: 5242880 })
    expect(f.addresses).toEqual(['10.213.0.2'])
    expect(f.listeners).toHaveLength(1)
    expect(f.files.get('/etc/a.conf')).toEqual({
      exists: true,
      owner: 'root',
      group: 'dovecot',
      mode: '0640',
      size: 6,
      sha256: 'abc123',
      content: 'hello\n',
    })
    expect(f.files.get('/etc/secret')?.content).toBeUndefined()
    expect(f.files.get('/etc/missing')).toEqual({ exists: false, notAFile: false })
    expect(f.files.get('/etc/adir')?.notAFile).toBe(true)
    expect(f.dirs.get('/srv/x')).toEqual({ exists: true, owner: 'vmail', group: 'vmail', mode: '0700' })
    expect(f.users.get('vmail')?.groups).toEqual(['vmail', 'mail'])
    expect(f.users.get('iroh')).toEqual({ exists: false })
    expect(f.packages.get('dovecot-imapd')?.installed).toBe(true)
    expect(f.packages.get('postfix')?.installed).toBe(false)
    expect(f.units.get('nginx.service')).toEqual({
      activeSince: '123456',
      active: 'active',
      load: 'loaded',
      enabled: 'enabled',
    })
  })

  test('incomplete output (no end marker) is an error', () => {
    expect(() => parseFacts('uid\t0\n')).toThrow(/incomplete/)
  })

  test('modes are normalised to four digits', () => {
    expect(['644', '0644', '4755', '0'].map(normalizeMode)).toEqual(['0644', '0644', '4755', '0000'])
  })

  test('the script runs here and its output parses (this runner is Debian)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'facts-'))
    writeFileSync(join(dir, 'a b.conf'), "it's\n", { mode: 0o640 })
    writeFileSync(join(dir, 'secret'), 'hunter2\n')
    writeFileSync(join(dir, 'same'), 'as deployed\n')
    mkdirSync(join(dir, 'sub'))
    const script = factsScript([
      file(join(dir, 'a b.conf'), ''),
      file(join(dir, 'secret'), '', { secret: true }),
      file(join(dir, 'none'), ''),
      file(join(dir, 'same'), 'as deployed\n'),
      directory(join(dir, 'sub')),
      directory(join(dir, 'no-dir')),
      binary(join(dir, 'secret'), {}),
      pkg('dpkg'),
      pkg('surely-not-a-package'),
      user('root'),
      user('no-such-user-here'),
      service('no-such.service'),
      service('no-such-either.service'),
    ])
    const f = parseFacts(execFileSync('sh', ['-c', script], { encoding: 'utf8' }))
    expect(f.os.id).toBe('debian')
    expect(f.files.get(join(dir, 'a b.conf'))).toMatchObject({ exists: true, mode: '0640', content: "it's\n" })
    expect(f.files.get(join(dir, 'secret'))).toMatchObject({ exists: true, content: undefined })
    expect(f.files.get(join(dir, 'none'))?.exists).toBe(false)
    // Only a file that differs from what the deploy would write is read back (for its diff).
    expect(f.files.get(join(dir, 'same'))).toMatchObject({ exists: true, size: 12, content: undefined })
    expect(f.files.get(join(dir, 'same'))?.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(f.dirs.get(join(dir, 'sub'))).toMatchObject({ exists: true, mode: '0755' })
    expect(f.dirs.get(join(dir, 'no-dir'))?.exists).toBe(false)
    expect(f.packages.get('dpkg')?.installed).toBe(true)
    expect(f.packages.has('surely-not-a-package')).toBe(false)
    expect(f.users.get('root')).toMatchObject({ exists: true, home: '/root', shell: expect.stringMatching(/sh$/) })
    expect(f.users.get('root')?.groups?.[0]).toBe('root')
    expect(f.users.get('no-such-user-here')?.exists).toBe(false)
    expect(f.units.has('no-such.service')).toBe(true)
    expect(f.units.has('no-such-either.service')).toBe(true)
  })
})
