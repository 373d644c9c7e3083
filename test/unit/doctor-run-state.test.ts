/**
 * The doctor's per-run state: it travels in the check context (never in module-level maps), the
 * selection plan is made once, and one function maps a config to doctor options.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfigText } from '../../src/config/load.js'
import { type CheckDef, type DoctorOptions, ok } from '../../src/doctor/model.js'
import { doctorOptions, resolveDoctorOptions } from '../../src/doctor/options.js'
import { RunState } from '../../src/doctor/run-state.js'
import { runChecks } from '../../src/doctor/runner.js'
import type { CheckPlan } from '../../src/doctor/select.js'

const options: DoctorOptions = { domain: 'x', imapHost: 'x', imapPort: 993, insecure: false, timeoutMs: 500 }
const def = (id: string, run: CheckDef['run']): CheckDef => ({ id, group: id.split('.')[0] as string, title: id, run })

describe('run state', () => {
  it('every check of a run sees the same state, and concurrent runs see different ones', async () => {
    const seen: RunState[] = []
    const defs = [
      def('a.one', async (ctx) => {
        seen.push(ctx.state)
        return ok('')
      }),
      def('a.two', async (ctx) => {
        seen.push(ctx.state)
        return ok('')
      }),
    ]
    await Promise.all([runChecks(defs, options), runChecks(defs, options)])
    expect(seen).toHaveLength(4)
    expect(new Set(seen).size).toBe(2)
  })

  it("uses the caller's state and leaves closing it to the caller", async () => {
    const state = new RunState()
    let closed = false
    state.close = async () => {
      closed = true
    }
    let got: RunState | undefined
    const check = def('a.one', async (ctx) => {
      got = ctx.state
      return ok('')
    })
    await runChecks([check], options, { state })
    expect(got).toBe(state)
    expect(closed).toBe(false)
  })

  it("runs the caller's plan as given instead of making another from the selection", async () => {
    const ran: string[] = []
    const defs = ['a.one', 'a.two', 'a.three'].map((id) =>
      def(id, async () => {
        ran.push(id)
        return ok('')
      }),
    )
    const plan: CheckPlan = new Map([
      ['a.one', 'run'],
      ['a.three', 'skipped'],
    ])
    const results = await runChecks(defs, options, { plan, only: ['a.two'] })
    expect(results.map((r) => [r.id, r.status])).toEqual([
      ['a.one', 'ok'],
      ['a.three', 'skip'],
    ])
    expect(ran).toEqual(['a.one'])
  })

  it('src/doctor keeps no mutable state at module level (no top-level Map, Set, WeakMap or let)', async () => {
    const root = join(import.meta.dirname, '../../src/doctor')
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'))
    expect(files.length).toBeGreaterThan(10)
    const offenders: string[] = []
    for (const file of files) {
      const text = await readFile(join(root, file), 'utf8')
      for (const [i, line] of text.split('\n').entries()) {
        if (
          /^(export )?(let|var) /.test(line) ||
          /^(export )?const \w+(: [^=]+)? = new (Weak)?(Map|Set)\b/.test(line)
        ) {
          offenders.push(`${file}:${i + 1}: ${line}`)
        }
      }
    }
    expect(offenders).toEqual([])
  })
})

describe('config → doctor options', () => {
  const text = `domain = "chat.example.org"
[turn]
secret = "${'s'.repeat(43)}"
host = "turn.example.org"
port = 3479
tls_port = 5350
[iroh]
relay_url = "https://relay.example.org"
[imap]
port = 10143
[doctor]
user = "doctor@chat.example.org"
password = "pw-from-config"
`
  const config = parseConfigText(text, 'chatmail.toml')
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chatmail-doctor-options-'))
    await writeFile(join(dir, 'chatmail.toml'), text, { mode: 0o600 })
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('fills in from the config what the target leaves unset', () => {
    expect(doctorOptions({ domain: config.domain, insecure: false, timeoutMs: 1000 }, config)).toEqual({
      domain: 'chat.example.org',
      imapHost: 'chat.example.org',
      imapPort: 10143,
      insecure: false,
      timeoutMs: 1000,
      user: 'doctor@chat.example.org',
      password: 'pw-from-config',
      turnSecret: 's'.repeat(43),
      turnTlsPort: 5350,
      expectedRelayUrl: 'https://relay.example.org',
      expectedTurn: { host: 'turn.example.org', port: 3479, tlsPort: 5350 },
      deployed: true,
      // The dns group's expected zone (src/dns/zone-input.ts): no addresses or key known here.
      dnsZone: expect.objectContaining({ domain: 'chat.example.org', ipv4: [], mtaSts: true, imapPort: 10143 }),
      // What the host checks expect on the host: the configured ports (src/server/services.ts).
      server: expect.objectContaining({
        ports: expect.arrayContaining([
          { unit: 'dovecot', proto: 'tcp', port: 10143, programs: ['dovecot', 'imap-login'] },
          { unit: 'coturn', proto: 'udp', port: 3479, programs: ['turnserver'] },
          { unit: 'coturn', proto: 'tcp', port: 5350, programs: ['turnserver'] },
        ]),
      }),
    })
  })

  it('what the target names wins over the config', () => {
    const o = doctorOptions(
      { domain: config.domain, imapHost: '10.0.0.1', user: 'u@x', password: 'p', insecure: true, timeoutMs: 1 },
      config,
    )
    expect(o).toMatchObject({ imapHost: '10.0.0.1', user: 'u@x', password: 'p', insecure: true })
  })

  it('the doctor command maps the config through the same function', async () => {
    const { options: fromFlags } = await resolveDoctorOptions({
      config: join(dir, 'chatmail.toml'),
      insecure: false,
    })
    expect(fromFlags).toEqual(doctorOptions({ domain: config.domain, insecure: false, timeoutMs: 5000 }, config))
  })
})
