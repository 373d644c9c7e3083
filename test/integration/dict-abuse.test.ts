/**
 * Issue 9 item 5: the dict services (chatmail-metadata, chatmail-accounts) under two attacks from
 * local clients, measured on the built services:
 * - 20 clients that send lookups as fast as they can and never read a reply;
 * - 3000 connections that each hold a 65,000-byte line without its newline.
 * Their memory (RSS, sampled) must stay under RSS_BOUND_MB while a healthy client's lookups keep
 * being answered. Without backpressure, caps and eviction, the first attack took chatmail-metadata
 * from 53 MB to 469 MB and the second kept 3000 connections open at 247 MB.
 */
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AccountsService, startAccountsService } from '../helpers/accounts.js'
import { type MetadataService, startMetadataService } from '../helpers/dovecot.js'

/** The stated bound: the units' MemoryMax is 256M (metadata) and 512M (accounts). */
const RSS_BOUND_MB = 160

const HELLO = 'H3\t2\t0\t\tx\n'
const META_LOOKUP =
  'Lshared/0123456789abcdef0123456789abcdef/vendor/vendor.dovecot/pvt/server/vendor/deltachat/irohrelay\ta@b\n'
const ACCOUNTS_LOOKUP = 'Lshared/userdb/abcdefghi@example.org\n'

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

function lookup(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path)
    let buf = ''
    s.setTimeout(20_000, () => {
      s.destroy()
      reject(new Error('healthy lookup: no answer within 20 s'))
    })
    s.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl >= 0) {
        s.destroy()
        resolve(buf.slice(0, nl))
      }
    })
    s.on('error', reject)
    s.write(HELLO + line)
  })
}

interface Run {
  maxRss: number
  healthy: number
}

/** Samples RSS and runs healthy lookups (one after another) until `attack` resolves. */
async function during(pid: number, path: string, line: string, expected: RegExp, attack: Promise<void>): Promise<Run> {
  let done = false
  let maxRss = rssMb(pid)
  const sampler = setInterval(() => {
    maxRss = Math.max(maxRss, rssMb(pid))
  }, 50)
  let healthy = 0
  const healthyLoop = (async () => {
    while (!done) {
      const reply = await lookup(path, line)
      expect(reply).toMatch(expected)
      healthy++
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  await attack
  done = true
  await healthyLoop
  clearInterval(sampler)
  return { maxRss: Math.max(maxRss, rssMb(pid)), healthy }
}

/** 20 clients that write lookups while the socket takes them, never read, for `ms`. */
function neverReaders(path: string, line: string, ms: number): Promise<void> {
  const chunk = Buffer.from((HELLO + line.repeat(500)).repeat(4))
  const sockets: Socket[] = []
  for (let i = 0; i < 20; i++) {
    const s = connect(path)
    s.on('error', () => {})
    const pump = (): void => {
      while (!s.destroyed && s.write(chunk)) {
        // until the socket's buffer is full
      }
      s.once('drain', pump)
    }
    s.on('connect', pump)
    sockets.push(s)
  }
  return new Promise((resolve) =>
    setTimeout(() => {
      for (const s of sockets) s.destroy()
      resolve()
    }, ms),
  )
}

/** 3000 connections that each send 65,000 bytes without a newline and hold them for `ms`. */
async function unfinishedLines(path: string, ms: number): Promise<number> {
  const part = Buffer.alloc(65_000, 0x41)
  const sockets: Socket[] = []
  let closedByServer = 0
  for (let i = 0; i < 3000; i++) {
    const s = connect(path)
    s.on('error', () => {})
    s.on('close', () => closedByServer++)
    s.on('connect', () => s.write(part))
    sockets.push(s)
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 10))
  }
  await new Promise((r) => setTimeout(r, ms))
  const closed = closedByServer
  for (const s of sockets) s.destroy()
  return closed
}

describe.each([
  ['chatmail-metadata', META_LOOKUP, /^Ohttps:\/\/relay\.example\.org$/],
  ['chatmail-accounts', ACCOUNTS_LOOKUP, /^N$/],
] as const)('%s under abuse', (name, line, expected) => {
  let meta: MetadataService | undefined
  let accounts: AccountsService | undefined
  let path: string
  let pid: number

  beforeAll(async () => {
    if (name === 'chatmail-metadata') {
      meta = await startMetadataService({ irohRelayUrl: 'https://relay.example.org' })
      path = meta.socket
      pid = meta.pid
    } else {
      accounts = await startAccountsService({ domain: 'example.org', mailRoot: '/nonexistent' })
      path = accounts.dictSocket
      pid = accounts.pid
    }
  })
  afterAll(async () => {
    await meta?.stop()
    await accounts?.stop()
  })

  it(`keeps RSS under ${RSS_BOUND_MB} MB and answers while 20 clients never read`, async () => {
    const before = rssMb(pid)
    const run = await during(pid, path, line, expected, neverReaders(path, line, 4000))
    console.log(
      `${name}: never-readers: RSS ${before.toFixed(0)} -> max ${run.maxRss.toFixed(0)} MB, ${run.healthy} healthy lookups answered`,
    )
    expect(run.maxRss).toBeLessThan(RSS_BOUND_MB)
    expect(run.healthy).toBeGreaterThan(0)
  }, 60_000)

  it(`keeps RSS under ${RSS_BOUND_MB} MB and answers while 3000 connections hold unfinished lines`, async () => {
    const before = rssMb(pid)
    let closed = 0
    const run = await during(
      pid,
      path,
      line,
      expected,
      unfinishedLines(path, 3000).then((n) => {
        closed = n
      }),
    )
    console.log(
      `${name}: 3000 unfinished lines: RSS ${before.toFixed(0)} -> max ${run.maxRss.toFixed(0)} MB, ${closed} closed by the service, ${run.healthy} healthy lookups answered`,
    )
    expect(run.maxRss).toBeLessThan(RSS_BOUND_MB)
    expect(closed).toBeGreaterThan(1000)
    expect(run.healthy).toBeGreaterThan(0)
    expect(await lookup(path, line)).toMatch(expected)
  }, 120_000)
})
