/**
 * A REAL Delta Chat core (deltachat-rpc-server 2.62.0) against a server made by `chatmail deploy
 * host` on a real Debian test host (IP-only, self-signed). The core runs fenced in a network
 * namespace of its own (test/helpers/deltachat.ts): it reaches the test host and nothing else.
 */
import { once } from 'node:events'
import { createServer } from 'node:net'
import { networkInterfaces } from 'node:os'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  CONNECT_JS,
  type Core,
  coreSkipReason,
  createFence,
  type Fence,
  iceServers,
  loginParam,
  RESOLVE_JS,
  startCore,
} from '../helpers/deltachat.js'
import { type DeployedHost, startDeployedHost } from '../helpers/deployed-host.js'

const HOST = { name: 'th-dc-80', index: 80 }
const FENCE = { name: 'dc80', index: 81 }
const skip = coreSkipReason()

describe.skipIf(skip)(`a real Delta Chat core against a deployed server${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: DeployedHost
  let fence: Fence
  let core: Core

  beforeAll(async () => {
    d = await startDeployedHost(HOST)
    fence = await createFence({ ...FENCE, hosts: [{ ip: d.host.host, names: [d.host.domain] }] })
    core = await startCore(fence)
  }, 600_000)

  afterAll(async () => {
    await core?.close().catch(() => {})
    await fence?.close().catch(() => {})
    await d?.stop()
  }, 120_000)

  test('the fence: the test host is reachable, nothing else is, and DNS answers at once', async () => {
    const nodeIn = (js: string, ...args: string[]) =>
      fence.exec([process.execPath, '-e', js, ...args]).then((r) => r.stdout.trim())
    // The test host, by address and by name.
    expect(await nodeIn(CONNECT_JS, d.host.host, '993')).toBe('connected')
    expect(JSON.parse(await nodeIn(RESOLVE_JS, d.host.domain))).toEqual([d.host.host])
    // Any other name: NXDOMAIN from the loopback resolver, not a timeout.
    expect(await nodeIn(RESOLVE_JS, 'deb.debian.org')).toBe('ENOTFOUND')
    expect(await nodeIn(RESOLVE_JS, 'use1-1.relay.iroh.network')).toBe('ENOTFOUND')

    // A server on every address of the runner: reachable from the runner, refused from the fence
    // at once (no route, or rejected), never a silent drop that would cost the core a timeout.
    const server = createServer((s) => s.end())
    server.listen(0, '0.0.0.0')
    await once(server, 'listening')
    const port = String((server.address() as { port: number }).port)
    try {
      const addrs = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && a.family === 'IPv4')
        .map((a) => a!.address)
      expect(addrs).toContain(fence.runnerIp)
      for (const a of addrs) {
        const r = await nodeIn(CONNECT_JS, a, port)
        expect(r, `from the fence to the runner's ${a}:${port}`).not.toBe('connected')
        expect(r, `from the fence to ${a}:${port}`).not.toBe('ETIMEDOUT')
      }
      // Another test host's range and a public address: no route at all.
      for (const a of ['10.213.250.2', '192.0.2.1', '203.0.113.1']) {
        expect(await nodeIn(CONNECT_JS, a, '443')).toMatch(/^E(NETUNREACH|HOSTUNREACH|CONNREFUSED)$/)
      }
    } finally {
      server.close()
    }

    // The core itself: an address on a domain nobody answers for fails, and fast (DNS answers).
    const id = await core.rpc.addAccount()
    const t0 = performance.now()
    await expect(
      core.rpc.addOrUpdateTransport(id, loginParam('nobody@example.org', 'not-a-password')),
    ).rejects.toThrow()
    process.stderr.write(
      `fence: configure of nobody@example.org failed after ${Math.round(performance.now() - t0)} ms\n`,
    )
    await core.rpc.removeAccount(id)
  }, 60_000)

  test('address + password configure a core; iceServers() lists our TURN with credentials the secret made', async () => {
    const id = await core.rpc.addAccount()
    const t0 = performance.now()
    await core.rpc.addOrUpdateTransport(id, loginParam(d.doctor.user, d.doctor.password, true))
    const ms = performance.now() - t0
    process.stderr.write(`core configure (address + password, self-signed): ${Math.round(ms)} ms\n`)
    expect(await core.rpc.isConfigured(id)).toBe(true)
    const [transport] = await core.rpc.listTransports(id)
    expect(transport?.addr).toBe(d.doctor.user)
    await core.rpc.startIo(id)
    // Core fetches the server's METADATA on its first IMAP connection; until then it has only
    // its public fallback servers.
    let servers: Awaited<ReturnType<typeof iceServers>> = []
    for (let i = 0; i < 100; i++) {
      servers = await iceServers(core, id)
      if (servers.some((s) => s.urls.includes(`turn:${d.host.host}:3478`))) break
      await new Promise((r) => setTimeout(r, 200))
    }
    const ours = servers.filter((s) => s.urls.includes(`turn:${d.host.host}:3478`))
    expect(ours, JSON.stringify(servers)).toHaveLength(1)
    const { username, credential } = ours[0]!
    expect(username).toMatch(/^\d+$/)
    expect(Number(username)).toBeGreaterThan(Date.now() / 1000)
    // The credential is valid for this server's secret: the CLI verifies it from chatmail.toml.
    const verify = await d.cli(['turn-cred', '--verify', `${d.host.host}:3478:${username}:${credential}`])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    const bad = await d.cli(['turn-cred', '--verify', `${d.host.host}:3478:${username}:${credential!.slice(1)}x`])
    expect(bad.code).toBe(1)
    await core.rpc.stopIo(id)
    await core.rpc.removeAccount(id)
  }, 120_000)
})
