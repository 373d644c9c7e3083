/**
 * The doctor's relay checks (src/doctor/checks/relay.ts), run by the real runner against the
 * iroh-relay stand-in and each of its faults: which check fails, and that its hint names the
 * cause rather than the runner's generic timeout hint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metadataChecks } from '../../src/doctor/checks/metadata.js'
import { relayChecks, V1_HINT } from '../../src/doctor/checks/relay.js'
import { runDoctor } from '../../src/doctor/index.js'
import type { CheckResult, DoctorOptions } from '../../src/doctor/model.js'
import { RunState } from '../../src/doctor/run-state.js'
import { GENERIC_TIMEOUT_HINT } from '../../src/doctor/runner.js'
import { type StandInFault, type StandInRelay, startStandInRelay } from '../helpers/relay.js'

type Status = CheckResult['status']
const IDS = ['relay.ping', 'relay.generate204', 'relay.upgrade', 'relay.handshake', 'relay.forward']

const standIns = new Map<StandInFault | 'healthy', StandInRelay>()
const kinds = ['healthy', '404', '200', 'nopong', 'noforward', 'v1'] as const

beforeAll(async () => {
  const started = await Promise.all(
    kinds.map((k) => startStandInRelay({ pingMs: 0, ...(k === 'healthy' ? {} : { fault: k }) })),
  )
  for (const [i, k] of kinds.entries()) standIns.set(k, started[i] as StandInRelay)
})
afterAll(async () => {
  await Promise.allSettled([...standIns.values()].map((s) => s.stop()))
})

const options = (relayUrl: string, timeoutMs = 1500): DoctorOptions => ({
  domain: 'relay.test',
  imapHost: '127.0.0.1',
  imapPort: 993,
  insecure: false,
  relayUrl,
  timeoutMs,
})

async function relay(kind: (typeof kinds)[number], timeoutMs?: number): Promise<Map<string, CheckResult>> {
  const url = (standIns.get(kind) as StandInRelay).url
  // metadata.irohrelay is what the relay checks wait for; --relay-url (options.relayUrl) supplies its
  // fact, so `only: relay` does not pull it in and the relay checks run at once.
  const report = await runDoctor(options(url, timeoutMs), {
    checks: [...metadataChecks, ...relayChecks],
    only: ['relay'],
  })
  expect(report.checks.map((c) => c.id)).toEqual(IDS)
  return new Map(report.checks.map((c) => [c.id, c]))
}

const statuses = (m: Map<string, CheckResult>): Record<string, Status> =>
  Object.fromEntries([...m].map(([id, c]) => [id, c.status]))

describe('relay checks against the stand-in', () => {
  it('a healthy 0.35 relay: every check ok, the upgrade names 0.35', async () => {
    const r = await relay('healthy')
    expect(statuses(r)).toEqual(Object.fromEntries(IDS.map((id) => [id, 'ok'])))
    expect(r.get('relay.upgrade')?.detail).toMatch(/iroh-relay 0\.35/)
    expect(r.get('relay.forward')?.detail).toMatch(/2 packets/)
  })

  // What each fault breaks: /ping and /generate_204 never depend on /relay; everything that needs
  // the upgrade (or, for nopong, the Pong that proves ClientInfo was processed) fails after it.
  const expected: Record<StandInFault, Status[]> = {
    '404': ['ok', 'ok', 'fail', 'fail', 'fail'],
    '200': ['ok', 'ok', 'fail', 'fail', 'fail'],
    nopong: ['ok', 'ok', 'ok', 'fail', 'fail'],
    noforward: ['ok', 'ok', 'ok', 'ok', 'fail'],
    v1: ['ok', 'ok', 'fail', 'fail', 'fail'],
  }
  for (const [fault, want] of Object.entries(expected) as [StandInFault, Status[]][]) {
    it(`fault ${fault}: ${IDS.filter((_, i) => want[i] === 'fail').join(', ')} fail, each with a hint`, async () => {
      const r = await relay(fault)
      expect(statuses(r)).toEqual(Object.fromEntries(IDS.map((id, i) => [id, want[i]])))
      for (const c of r.values()) if (c.status === 'fail') expect(c.hint ?? '', c.id).not.toBe('')
    })
  }

  it('404 and 200: relay.upgrade names the status and the nginx fix', async () => {
    for (const [fault, code] of [
      ['404', '404'],
      ['200', '200'],
    ] as const) {
      const up = (await relay(fault)).get('relay.upgrade') as CheckResult
      expect(up.detail).toContain(`answered ${code}`)
      expect(up.hint).toContain('proxy_pass')
    }
  })

  it('v1: relay.upgrade says 1.x and gives the pin-0.35 hint', async () => {
    const results = await relay('v1')
    const up = results.get('relay.upgrade') as CheckResult
    expect(up.detail).toMatch(/1\.x/)
    expect(up.hint).toBe(V1_HINT)
    // The derp upgrade is answered 400: the handshake's hint names that, from the error's status.
    expect((results.get('relay.handshake') as CheckResult).hint).toMatch(/rejected Upgrade: iroh derp http \(400\)/)
  })

  it('timeouts name the stage, not the generic hint: the Pong, the forwarded packet', async () => {
    const [nopong, noforward] = await Promise.all([relay('nopong', 1000), relay('noforward', 1000)])
    const handshake = nopong.get('relay.handshake') as CheckResult
    expect(handshake.detail).toMatch(/Pong/)
    expect(handshake.hint).not.toBe(GENERIC_TIMEOUT_HINT)
    expect(handshake.hint).toMatch(/never answered a Ping/)
    const forward = noforward.get('relay.forward') as CheckResult
    expect(forward.detail).toMatch(/did not forward/)
    expect(forward.hint).not.toBe(GENERIC_TIMEOUT_HINT)
    expect(forward.hint).toMatch(/did not forward a packet/)
  })

  it('no relay URL at all: every relay check skips, saying so', async () => {
    for (const def of relayChecks) {
      const outcome = await def.run({
        options: { ...options(''), relayUrl: undefined } as unknown as DoctorOptions,
        findings: {},
        state: new RunState(),
        signal: new AbortController().signal,
        timeoutMs: 1000,
        result: () => Promise.reject(new Error('unused')),
      })
      expect(outcome.status, def.id).toBe('skip')
      expect(outcome.detail).toMatch(/no iroh relay URL/)
    }
  })
})
