/**
 * Issue 9 item 1, host-key type confusion: a host known in known_hosts with an ed25519 key that
 * now offers only an ecdsa key (a fake ssh2 server on loopback) is a CHANGED host, refused with
 * the file and line whatever --accept-new-host-key says; known types are offered first.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { SshSession } from '../../src/ssh/index.js'

const { Server } = ssh2

function keygen(dir: string, name: string, type: string): { file: string; pub: string } {
  const file = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file])
  return { file, pub: readFileSync(`${file}.pub`, 'utf8').trim() }
}

/** A server that offers the given host keys and lets any public key in; counts logins. */
async function fakeServer(hostKeys: string[]) {
  const state = { logins: 0, commands: [] as string[] }
  const server = new Server({ hostKeys: hostKeys.map((f) => readFileSync(f)) }, (client) => {
    client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])))
    client.on('ready', () => {
      state.logins++
      client.on('session', (accept) => {
        const session = accept()
        session.on('exec', (acc, _rej, info) => {
          state.commands.push(info.command)
          const ch = acc()
          ch.exit(0)
          ch.end()
        })
      })
    })
    client.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return { server, port, state }
}

describe('host-key type confusion (fake ssh2 server)', () => {
  let dir: string
  let userKey: string
  let ed: { file: string; pub: string }
  let ecdsa: { file: string; pub: string }
  let ecdsaOnly: Awaited<ReturnType<typeof fakeServer>>
  let both: Awaited<ReturnType<typeof fakeServer>>

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ssh-hktype-'))
    userKey = keygen(dir, 'user', 'ed25519').file
    ed = keygen(dir, 'host_ed25519', 'ed25519')
    ecdsa = keygen(dir, 'host_ecdsa', 'ecdsa')
    ecdsaOnly = await fakeServer([ecdsa.file])
    both = await fakeServer([ecdsa.file, ed.file])
  })
  afterAll(() => {
    ecdsaOnly.server.close()
    both.server.close()
  })

  const knownHosts = (port: number, pub: string, name: string) => {
    const file = join(dir, name)
    const [type, key] = pub.split(' ')
    writeFileSync(file, `# test\nother.example.org ${type} ${key}\n[127.0.0.1]:${port} ${type} ${key}\n`)
    return file
  }

  for (const accept of [true, false]) {
    test(`a host known with ed25519 that offers only ecdsa is refused as CHANGED (accept-new ${accept})`, async () => {
      const kh = knownHosts(ecdsaOnly.port, ed.pub, `kh-${accept}`)
      const before = readFileSync(kh, 'utf8')
      const logins = ecdsaOnly.state.logins
      const err = await SshSession.connect({
        host: '127.0.0.1',
        port: ecdsaOnly.port,
        keyFile: userKey,
        knownHostsFile: kh,
        acceptNewHostKey: accept,
        timeoutMs: 5000,
      }).then(
        (s) => {
          s.close()
          return undefined
        },
        (e: Error & { exitCode?: number; hint?: string }) => e,
      )
      expect(err?.message).toMatch(new RegExp(`CHANGED: .*kh-${accept} line 3 holds .*ssh-ed25519`))
      expect(err?.message).toMatch(/ecdsa-sha2-nistp256/)
      expect(err?.exitCode).toBe(3)
      expect(err?.hint).toMatch(/ssh-keygen -R/)
      expect(readFileSync(kh, 'utf8')).toBe(before)
      expect(ecdsaOnly.state.logins).toBe(logins)
    })
  }

  test('the known key type is negotiated first: a server with ecdsa and ed25519 is accepted by its ed25519 key', async () => {
    const kh = knownHosts(both.port, ed.pub, 'kh-both')
    const s = await SshSession.connect({
      host: '127.0.0.1',
      port: both.port,
      keyFile: userKey,
      knownHostsFile: kh,
      timeoutMs: 5000,
    })
    await s.exec('true')
    s.close()
    expect(both.state.commands).toEqual(['true'])
  })

  test('a host known only with ecdsa is accepted when it offers ecdsa among others', async () => {
    const kh = knownHosts(both.port, ecdsa.pub, 'kh-both-ecdsa')
    const s = await SshSession.connect({ host: '127.0.0.1', port: both.port, keyFile: userKey, knownHostsFile: kh })
    s.close()
  })
})
