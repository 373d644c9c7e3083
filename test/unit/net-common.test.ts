/** The shared pieces of the network clients: one deadline, one socket-error classifier, the size limit of src files. */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Deadline } from '../../src/lib/deadline.js'
import { classifySocketError } from '../../src/lib/socket-errors.js'

const errors = {
  timeoutError: (stage: string) => new Error(`timed out while ${stage}`),
  abortError: (stage: string) => new Error(`aborted while ${stage}`),
}
const never = new Promise<never>(() => undefined)
const socket = () => {
  const s = { destroyed: false, destroy: () => (s.destroyed = true) }
  return s
}

describe('Deadline', () => {
  it('rejects a wait with the timeout error naming the stage, and destroys what it tracks', async () => {
    const d = new Deadline({ timeoutMs: 20, ...errors })
    const s = socket()
    d.track(s)
    d.stage = 'waiting for the Pong'
    await expect(d.race(never)).rejects.toThrow('timed out while waiting for the Pong')
    expect(d.signal.aborted).toBe(true)
    expect(s.destroyed).toBe(true)
    d.dispose()
  })

  it("turns the caller's abort into the abort error", async () => {
    const outer = new AbortController()
    const d = new Deadline({ timeoutMs: 10_000, signal: outer.signal, ...errors })
    const waiting = d.race(never)
    outer.abort()
    await expect(waiting).rejects.toThrow('aborted while connecting')
    d.dispose()
  })

  it('an already aborted signal ends it at once', async () => {
    const d = new Deadline({ timeoutMs: 10_000, signal: AbortSignal.abort(), ...errors })
    expect(d.signal.aborted).toBe(true)
    d.dispose()
  })

  it('dispose destroys tracked sockets but not released ones, and stops the timer', async () => {
    const d = new Deadline({ timeoutMs: 10, ...errors })
    const kept = socket()
    const dropped = socket()
    d.track(kept)
    d.track(dropped)
    d.release(kept)
    d.dispose()
    expect(dropped.destroyed).toBe(true)
    expect(kept.destroyed).toBe(false)
    await new Promise((r) => setTimeout(r, 30))
    expect(d.signal.aborted).toBe(false)
    expect(d.remaining()).toBe(0)
  })
})

describe('classifySocketError', () => {
  const err = (code: string | undefined, message: string) => Object.assign(new Error(message), code ? { code } : {})

  it('classes connection failures by code', () => {
    expect(classifySocketError(err('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1')).failure).toBe('refused')
    expect(classifySocketError(err('ECONNRESET', 'socket hang up')).failure).toBe('reset')
    expect(classifySocketError(err('EPIPE', 'write EPIPE')).failure).toBe('reset')
    for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA'])
      expect(classifySocketError(err(code, `getaddrinfo ${code} x`)).failure).toBe('unresolved')
    for (const code of ['EHOSTUNREACH', 'ENETUNREACH'])
      expect(classifySocketError(err(code, code)).failure).toBe('unreachable')
    expect(classifySocketError(err('ETIMEDOUT', 'connect ETIMEDOUT')).failure).toBe('timeout')
    expect(classifySocketError(err(undefined, 'something else')).failure).toBeUndefined()
  })

  it('finds the code in the message when a wrapper dropped it', () => {
    const c = classifySocketError(err(undefined, 'connect ECONNREFUSED 10.0.0.1:993'))
    expect(c).toMatchObject({ code: 'ECONNREFUSED', failure: 'refused', tls: false, certificate: false })
  })

  it('tells a certificate problem from other TLS failures', () => {
    const expired = classifySocketError(err('CERT_HAS_EXPIRED', 'certificate has expired'))
    expect(expired).toMatchObject({ certificate: true, tls: true })
    const selfSigned = classifySocketError(err('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'))
    expect(selfSigned).toMatchObject({ certificate: true, tls: true })
    const alert = classifySocketError(err('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'tlsv1 alert protocol version'))
    expect(alert).toMatchObject({ certificate: false, tls: true })
    const reset = classifySocketError(
      err('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'),
    )
    expect(reset).toMatchObject({ failure: 'reset', certificate: false, tls: true })
  })
})

describe('layout', () => {
  it('no file in src/ is over about 350 lines (issue 8: ~350)', async () => {
    const root = join(import.meta.dirname, '../../src')
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'))
    const long: string[] = []
    for (const f of files) {
      const lines = (await readFile(join(root, f), 'utf8')).trimEnd().split('\n').length
      if (lines > 360) long.push(`${f}: ${lines} lines`)
    }
    expect(long).toEqual([])
  })
})
