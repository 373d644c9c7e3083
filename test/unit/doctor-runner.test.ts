import { describe, expect, it } from 'vitest'
import { type CheckDef, type DoctorOptions, fail, ok, skip } from '../../src/doctor/model.js'
import { runChecks } from '../../src/doctor/runner.js'
import { planChecks } from '../../src/doctor/select.js'
import { ChatmailError } from '../../src/lib/errors.js'

const options: DoctorOptions = { domain: 'x', imapHost: 'x', imapPort: 993, insecure: false, timeoutMs: 200 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function def(id: string, run: CheckDef['run'], extra: Partial<CheckDef> = {}): CheckDef {
  return { id, group: id.split('.')[0] as string, title: id, run, ...extra }
}

describe('runChecks', () => {
  it('starts independent checks together and reports in registry order, onResult too', async () => {
    const started: string[] = []
    const finished: string[] = []
    const slow = def('a.slow', async () => {
      started.push('a.slow')
      await sleep(50)
      return ok('slow')
    })
    const fast = def('b.fast', async () => {
      started.push('b.fast')
      return ok('fast')
    })
    const results = await runChecks([slow, fast], options, { onResult: (r) => finished.push(r.id) })
    expect(results.map((r) => r.id)).toEqual(['a.slow', 'b.fast'])
    expect(started).toEqual(['a.slow', 'b.fast'])
    // b.fast finished first, but is reported after a.slow: lines follow the check order.
    expect(finished).toEqual(['a.slow', 'b.fast'])
  })

  it('runs a check after its dependency, with the findings it wrote', async () => {
    const first = def('a.first', async (ctx) => {
      ctx.findings.relayUrl = new URL('https://r.example')
      return ok('found')
    })
    const second = def('a.second', async (ctx) => ok(ctx.findings.relayUrl?.href ?? 'none'), { after: ['a.first'] })
    const [, r] = await runChecks([first, second], options)
    expect(r?.detail).toBe('https://r.example/')
  })

  it('skips a check whose dependency failed or was skipped, naming it', async () => {
    const broken = def('a.broken', async () => fail('no', 'fix it'))
    const skipped = def('a.skipped', async () => skip('nothing to do'))
    const needsBroken = def('b.one', async () => ok('ran'), { after: ['a.broken'] })
    const needsSkipped = def('b.two', async () => ok('ran'), { after: ['a.skipped'] })
    const results = await runChecks([broken, skipped, needsBroken, needsSkipped], options)
    expect(results[2]).toMatchObject({ status: 'skip', detail: 'needs a.broken, which failed' })
    expect(results[3]).toMatchObject({ status: 'skip', detail: 'needs a.skipped, which was skipped' })
  })

  it('says a root cause once: later failures with the same cause skip naming the first, in check order', async () => {
    const cause = { key: 'unresolved x', says: 'x does not resolve' }
    // The later check fails first in time; the first in check order still owns the cause.
    const first = def('a.first', async () => {
      await sleep(30)
      return { ...fail('no address for x', 'publish an A record'), cause }
    })
    const second = def('b.second', async () => ({ ...fail('cannot reach x', 'start nginx'), cause }))
    const other = def('c.other', async () => ({
      ...fail('nothing on x:1', 'open it'),
      cause: { key: 'closed x:1', says: 'x:1 closed' },
    }))
    const dependent = def('d.dependent', async () => ok('ran'), { after: ['b.second'] })
    const seen: string[] = []
    const results = await runChecks([first, second, other, dependent], options, { onResult: (r) => seen.push(r.id) })
    expect(seen).toEqual(['a.first', 'b.second', 'c.other', 'd.dependent'])
    expect(results[0]).toMatchObject({ status: 'fail', hint: 'publish an A record' })
    expect(results[1]).toMatchObject({ status: 'skip', detail: 'needs a.first, which failed: x does not resolve' })
    expect(results[1]?.hint).toBeUndefined()
    expect(results[2]).toMatchObject({ status: 'fail', hint: 'open it' })
    // A dependent of a check that skipped for a root cause names the root cause check.
    expect(results[3]).toMatchObject({ status: 'skip', detail: 'needs a.first, which failed' })
    expect(Object.keys(results[1] ?? {})).not.toContain('cause')
  })

  it('a check skipped for a chain of skipped dependencies names where the chain began', async () => {
    const login = def('a.login', async () => skip('no account'))
    const capability = def('a.capability', async () => ok('ran'), { after: ['a.login'] })
    const turn = def('b.turn', async () => ok('ran'), { after: ['a.capability'] })
    const results = await runChecks([login, capability, turn], options)
    expect(results.map((r) => r.detail)).toEqual([
      'no account',
      'needs a.login, which was skipped',
      'needs a.login, which was skipped',
    ])
  })

  it('still runs a dependent when an override already supplied the fact the dependency provides', async () => {
    const discover = def('a.discover', async () => fail('not found', 'fix'), { provides: 'relayUrl' })
    const use = def('b.use', async (ctx) => ok(ctx.findings.relayUrl?.host ?? ''), { after: ['a.discover'] })
    const results = await runChecks([discover, use], options, { findings: { relayUrl: new URL('https://o.example') } })
    expect(results[1]).toMatchObject({ status: 'ok', detail: 'o.example' })
  })

  it('fails a check that outlives its timeout, aborts its signal, and does not wait for it', async () => {
    let aborted = false
    const hang = def('a.hang', (ctx) => {
      ctx.signal.addEventListener('abort', () => {
        aborted = true
      })
      return new Promise(() => undefined)
    })
    const after = def('b.after', async () => ok('ran'), { after: ['a.hang'] })
    const results = await runChecks([hang, after], options)
    expect(results[0]).toMatchObject({ status: 'fail', detail: expect.stringContaining('timed out') })
    expect(results[0]?.hint).toContain('--timeout')
    expect(aborted).toBe(true)
    expect(results[1]?.status).toBe('skip')
  })

  it('turns a thrown error into a failure with a hint', async () => {
    const [r] = await runChecks(
      [
        def('a.throws', async () => {
          throw new Error('boom')
        }),
      ],
      options,
    )
    expect(r).toMatchObject({ status: 'fail', detail: expect.stringContaining('boom'), hint: expect.any(String) })
  })

  it('refuses dependency cycles instead of hanging', async () => {
    const a = def('a.a', async () => ok(''), { after: ['a.b'] })
    const b = def('a.b', async () => ok(''), { after: ['a.a'] })
    await expect(runChecks([a, b], options)).rejects.toThrow(/cycle/)
  })
})

describe('--only / --skip', () => {
  const defs = [
    def('imap.login', async () => ok('')),
    def('metadata.turn', async () => ok(''), { after: ['imap.login'], provides: 'turn', group: 'discovery' }),
    def('turn.allocate.udp', async () => ok(''), { after: ['metadata.turn'] }),
    def('relay.ping', async () => ok('')),
  ]

  it('selects by id, group or id prefix, and pulls in what the selection waits for', () => {
    expect([...planChecks(defs, { only: ['relay'] }).keys()]).toEqual(['relay.ping'])
    expect([...planChecks(defs, { only: ['turn.allocate.udp'] }).keys()]).toEqual([
      'imap.login',
      'metadata.turn',
      'turn.allocate.udp',
    ])
    expect([...planChecks(defs, { only: ['discovery'] }).keys()]).toEqual(['imap.login', 'metadata.turn'])
    expect([...planChecks(defs, { only: ['metadata,relay.ping'] }).keys()]).toEqual([
      'imap.login',
      'metadata.turn',
      'relay.ping',
    ])
  })

  it('does not pull in a dependency whose fact an override supplies', () => {
    const findings = { turn: { host: 'h', port: 1, username: '1', expires: 1, password: 'p' } }
    expect([...planChecks(defs, { only: ['turn'] }, findings).keys()]).toEqual(['turn.allocate.udp'])
  })

  it('reports --skip checks as skipped, and their dependents name them', async () => {
    const results = await runChecks(defs, options, { skip: ['metadata.turn'] })
    expect(results.map((r) => [r.id, r.status])).toEqual([
      ['imap.login', 'ok'],
      ['metadata.turn', 'skip'],
      ['turn.allocate.udp', 'skip'],
      ['relay.ping', 'ok'],
    ])
    expect(results[2]?.detail).toBe('needs metadata.turn, which was skipped')
  })

  it('refuses an unknown id as a usage error (exit 2)', () => {
    try {
      planChecks(defs, { only: ['imap.nope'] })
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(ChatmailError)
      expect((err as ChatmailError).exitCode).toBe(2)
      expect((err as ChatmailError).message).toContain('imap.nope')
    }
  })

  it('--skip may name checks this run cannot have (the host group without SSH); --only may not', () => {
    const absent = [def('host.units', async () => ok(''), { group: 'host' })]
    expect([...planChecks(defs, { skip: ['host'], absent }).entries()]).toEqual([
      ['imap.login', 'run'],
      ['metadata.turn', 'run'],
      ['turn.allocate.udp', 'run'],
      ['relay.ping', 'run'],
    ])
    expect(() => planChecks(defs, { skip: ['host'] })).toThrow(/--skip host: no such check or group/)
    expect(() => planChecks(defs, { only: ['host'], absent })).toThrow(/--only host: no such check or group/)
  })
})
