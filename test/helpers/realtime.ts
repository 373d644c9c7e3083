/**
 * Webxdc realtime between two accounts of a REAL Delta Chat core, the way the app's realtime
 * channels (calls' signalling, games) use the server's iroh relay: one account sends a webxdc app
 * into a chat, both join its realtime channel, and bytes go each way. With UDP blocked inside the
 * fence (DNS to the fence's own resolver excepted), iroh finds no direct path, so every byte must
 * go through the relay the core got from the server's METADATA (`irohrelay`).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Core, type Fence, waitForEvent } from './deltachat.js'

const run = promisify(execFile)

/** A minimal webxdc app (a zip with index.html and manifest.toml), made with Debian's `zip`. */
export async function makeWebxdc(dir: string): Promise<string> {
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>chatmail realtime test</title>\n')
  writeFileSync(join(dir, 'manifest.toml'), 'name = "chatmail realtime test"\n')
  const file = join(dir, 'realtime-test.xdc')
  await run('zip', ['-q', '-j', file, join(dir, 'index.html'), join(dir, 'manifest.toml')])
  return file
}

/** iptables rules (OUTPUT, in the fence) that leave DNS on loopback and drop every other UDP packet. */
const UDP_RULES: string[][] = [
  ['-o', 'lo', '-p', 'udp', '--dport', '53', '-j', 'ACCEPT'],
  ['-o', 'lo', '-p', 'udp', '--sport', '53', '-j', 'ACCEPT'],
  ['-p', 'udp', '-j', 'DROP'],
]

async function fenceIptables(fence: Fence, args: string[]): Promise<void> {
  const r = await fence.exec(['iptables', ...args])
  assert.equal(r.code, 0, `iptables ${args.join(' ')} in the fence: ${r.stderr}`)
}

/** Runs fn with UDP blocked in the fence (the rules go first in OUTPUT, and are removed after). */
export async function withoutUdp<R>(fence: Fence, fn: () => Promise<R>): Promise<R> {
  for (const r of [...UDP_RULES].reverse()) await fenceIptables(fence, ['-I', 'OUTPUT', '1', ...r])
  try {
    return await fn()
  } finally {
    for (const r of UDP_RULES) await fence.exec(['iptables', '-D', 'OUTPUT', ...r])
  }
}

/** Resends until the peer's first WebxdcRealtimeData arrives (joining the channel takes a moment). */
async function deliver(core: Core, from: number, fromMsg: number, to: number, toMsg: number, bytes: number[]) {
  const arrived = waitForEvent(
    core,
    to,
    'WebxdcRealtimeData',
    (e) => e.msgId === toMsg && e.data.length === bytes.length && e.data.every((b, i) => b === bytes[i]),
    60_000,
  )
  let done = false
  const t0 = performance.now()
  const resend = (async () => {
    while (!done) {
      await core.rpc.sendWebxdcRealtimeData(from, fromMsg, bytes)
      await new Promise((res) => setTimeout(res, 500))
    }
  })()
  try {
    await arrived
    return performance.now() - t0
  } finally {
    done = true
    await resend
  }
}

export interface RealtimeResult {
  /** From the first send to the first arrival, a→b and b→a. */
  ms: [number, number]
}

/**
 * a sends a webxdc app into chatA (a chat with b, encrypted); both join its realtime channel;
 * bytes go a→b and b→a. Call it inside withoutUdp() to force the relay.
 */
export async function realtimeExchange(core: Core, a: number, chatA: number, b: number): Promise<RealtimeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-xdc-'))
  try {
    const file = await makeWebxdc(dir)
    const incoming = waitForEvent(core, b, 'IncomingMsg', () => true, 60_000)
    const msgA = await core.rpc.sendMsg(a, chatA, {
      text: null,
      html: null,
      viewtype: 'Webxdc',
      file,
      filename: 'realtime-test.xdc',
      location: null,
      overrideSenderName: null,
      quotedMessageId: null,
      quotedText: null,
    })
    const msgB = (await incoming).msgId
    assert.equal((await core.rpc.getMessage(b, msgB)).viewType, 'Webxdc', 'b received something else than the app')
    await core.rpc.sendWebxdcRealtimeAdvertisement(a, msgA)
    await core.rpc.sendWebxdcRealtimeAdvertisement(b, msgB)
    const ab = await deliver(core, a, msgA, b, msgB, [...Buffer.from('from a, through the relay')])
    const ba = await deliver(core, b, msgB, a, msgA, [...Buffer.from('from b, through the relay')])
    await core.rpc.leaveWebxdcRealtime(a, msgA)
    await core.rpc.leaveWebxdcRealtime(b, msgB)
    return { ms: [ab, ba] }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
