import { describe, expect, it } from 'vitest'
import type { DeployHostResult } from '../../src/app/deploy-host.js'
import { declined, deploySummary, deployText, isLive, needsYes } from '../../src/app/deploy-render.js'
import { emptyFacts } from '../../src/deploy/facts.js'
import { computePlan } from '../../src/deploy/plan.js'
import { file, service } from '../../src/deploy/resources.js'

const conf = file('/etc/x.conf', 'a\n')
const plan = computePlan(
  { resources: [conf, service('x.service', { restartOn: [conf] })], ports: [] },
  { ...emptyFacts(), uid: 0, arch: 'x86_64' },
)
const result = (applied: boolean): DeployHostResult => ({
  target: { host: '203.0.113.5', port: 22, user: 'root' },
  doctorUser: 'doctor@203.0.113.5',
  result: {
    facts: emptyFacts(),
    plan,
    roundTrips: 3,
    durationMs: 1500,
    ...(applied
      ? {
          applied: {
            ok: true,
            written: ['/etc/x.conf'],
            restarted: [],
            started: ['x.service'],
            reloaded: [],
            stopped: [],
            failedServices: [],
            installed: 0,
            timings: {},
            log: '',
          },
        }
      : {}),
  },
})
const view = { json: false, dryRun: false, yes: true, verbose: false, tty: false }

describe('the deploy renderer', () => {
  it('shapes the JSON summary', () => {
    expect(deploySummary(result(true), false)).toEqual({
      host: 'root@203.0.113.5:22',
      dryRun: false,
      changed: 2,
      unchanged: 0,
      resources: [
        { id: 'file:/etc/x.conf', action: 'create', changes: ['new, 2 bytes'] },
        { id: 'service:x.service', action: 'update', changes: ['start', 'enable'] },
      ],
      restarted: ['x.service'],
      roundTrips: 3,
      durationMs: 1500,
    })
  })
  it('says what happened in one line, or what would change on a dry run', () => {
    expect(deployText(result(true), view)).toEqual([
      'root@203.0.113.5:22: 2 changed, 0 unchanged; restarted x.service (1.5 s, 3 round trips)',
    ])
    const dry = deployText(result(false), { ...view, dryRun: true })
    expect(dry[0]).toContain('+ file:/etc/x.conf: new, 2 bytes')
    expect(dry[1]).toBe('2 to change, 0 unchanged (dry run: nothing was changed)')
    expect(declined(result(false), false)).toBe(true)
    expect(deployText(result(false), view)).toEqual(['nothing changed (not confirmed)'])
  })
  it('asks for --yes only where no one can be asked', () => {
    expect(needsYes({ ...view, yes: false }, false)).toBe(true)
    expect(needsYes({ ...view, yes: false, tty: true }, true)).toBe(false)
    expect(needsYes({ ...view, yes: false, tty: true, json: true }, true)).toBe(true)
    expect(needsYes({ ...view, yes: false, dryRun: true }, false)).toBe(false)
    expect(isLive({ ...view, tty: true })).toBe(true)
    expect(isLive({ ...view, tty: true, json: true })).toBe(false)
  })
})
