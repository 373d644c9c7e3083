import { describe, expect, it, test } from 'vitest'
import { applyHead, applyScript as fullScript, parseApplyOutput } from '../../src/deploy/apply.js'
import { emptyFacts, type Facts, factsScript } from '../../src/deploy/facts.js'
import { computePlan, formatPlan } from '../../src/deploy/plan.js'
import {
  binary,
  checkSpec,
  command,
  type DeploySpec,
  dataFile,
  directory,
  file,
  pkg,
  service,
  sha256,
  user,
} from '../../src/deploy/resources.js'

/** The part of the apply script made for the plan (after the fixed helpers). */
const applyScript = (plan: Parameters<typeof fullScript>[0]): string => {
  const script = fullScript(plan)
  if (script === '') return ''
  expect(script.startsWith(applyHead())).toBe(true)
  return script.slice(applyHead().length)
}

function facts(over: Partial<Facts> = {}): Facts {
  return {
    ...emptyFacts(),
    uid: 0,
    os: { id: 'debian', versionId: '12', codename: 'bookworm' },
    arch: 'x86_64',
    diskFreeKb: 10_000_000,
    ...over,
  }
}

const CONF = 'a = 1\nb = 2\n'
const conf = file('/etc/x/x.conf', CONF, { mode: '0640', group: 'x' })
const secret = file('/etc/x/secret', 's3cret\n', { mode: '0600', secret: true })
const unit = file('/etc/systemd/system/x.service', '[Service]\nExecStart=/usr/bin/x\n')
const bin = binary('/usr/local/bin/x', {
  x86_64: { sha256: 'a'.repeat(64), source: { url: 'https://example.org/x.tar.gz' }, tarMember: './x' },
})
const svc = service('x.service', { restartOn: [conf, unit, bin], validate: ['x --check'] })
const other = service('other.service', { restartOn: [secret] })
const spec: DeploySpec = {
  resources: [
    pkg('x', ['x x/q string y']),
    user('x', { home: '/var/lib/x' }),
    directory('/etc/x'),
    conf,
    secret,
    unit,
    bin,
    svc,
    other,
  ],
  ports: [],
}

/** Facts of a host on which `spec` is already deployed. */
function converged(): Facts {
  const own = (owner: string, group: string, mode: string) => ({ exists: true, owner, group, mode })
  return facts({
    packages: new Map([['x', { installed: true, status: 'installed', version: '1' }]]),
    users: new Map([['x', { exists: true, home: '/var/lib/x', shell: '/usr/sbin/nologin', groups: ['x'] }]]),
    dirs: new Map([['/etc/x', own('root', 'root', '0755')]]),
    files: new Map([
      ['/etc/x/x.conf', { ...own('root', 'x', '0640'), sha256: sha256(CONF), content: CONF, size: CONF.length }],
      ['/etc/x/secret', { ...own('root', 'root', '0600'), sha256: sha256('s3cret\n'), size: 7 }],
      ['/etc/systemd/system/x.service', { ...own('root', 'root', '0644'), sha256: sha256(unit.content) }],
      ['/usr/local/bin/x', { ...own('root', 'root', '0755'), sha256: 'a'.repeat(64) }],
    ]),
    units: new Map([
      ['x.service', { load: 'loaded', active: 'active', enabled: 'enabled', activeSince: '1' }],
      ['other.service', { load: 'loaded', active: 'active', enabled: 'enabled', activeSince: '1' }],
    ]),
  })
}

describe('plan', () => {
  test('the spec is valid; bad specs are named', () => {
    expect(checkSpec(spec)).toEqual([])
    expect(
      checkSpec({
        resources: [file('rel', ''), file('rel', ''), service('a', { restartOn: [file('/nope', '')] })],
        ports: [],
      }),
    ).toEqual([
      'file:rel: path must be absolute',
      'duplicate resource file:rel',
      'file:rel: path must be absolute',
      'service:a: restartOn names a resource not in the stack: file:/nope',
    ])
  })

  test('a converged host: 0 changed, no restart, empty apply script', () => {
    const plan = computePlan(spec, converged())
    expect(plan.changed).toBe(0)
    expect(plan.items.every((i) => i.action === 'unchanged')).toBe(true)
    expect(applyScript(plan)).toBe('')
    expect(formatPlan(plan)).toBe('0 changed, 9 unchanged\n')
  })

  test('a fresh host: everything created, services started and enabled', () => {
    const plan = computePlan(spec, facts())
    expect(plan.items.map((i) => i.action)).toEqual([
      'create',
      'create',
      'create',
      'create',
      'create',
      'create',
      'create',
      'update',
      'update',
    ])
    const s = plan.items.find((i) => i.resource.id === svc.id)!
    expect(s).toMatchObject({ start: true, enable: true })
    expect(s.restart).toBeUndefined()
    expect(plan.items.find((i) => i.resource.id === secret.id)?.diff).toBeUndefined()
    expect(plan.items.find((i) => i.resource.id === conf.id)?.diff).toContain('+a = 1')
  })

  test('a changed config: diff, restart of its service only', () => {
    const f = converged()
    const old = 'a = 1\nb = 1\n'
    f.files.set('/etc/x/x.conf', { ...f.files.get('/etc/x/x.conf')!, sha256: sha256(old), content: old })
    const plan = computePlan(spec, f)
    expect(plan.changed).toBe(2)
    const c = plan.items.find((i) => i.resource.id === conf.id)!
    expect(c).toMatchObject({ action: 'update', changes: ['content changed'], writeContent: true })
    expect(c.diff).toContain('-b = 1\n+b = 2')
    expect(plan.items.find((i) => i.resource.id === svc.id)).toMatchObject({ restart: true, triggeredBy: [conf.id] })
    expect(plan.items.find((i) => i.resource.id === other.id)?.action).toBe('unchanged')
    expect(formatPlan(plan)).toContain(`~ ${svc.id}: restart (${conf.id} changed)`)
  })

  test('a secret never shows its content', () => {
    const f = converged()
    f.files.set('/etc/x/secret', { ...f.files.get('/etc/x/secret')!, sha256: 'old', content: 'old-secret\n' })
    const plan = computePlan(spec, f)
    const s = plan.items.find((i) => i.resource.id === secret.id)!
    expect(s.changes).toEqual(['content changed (secret)'])
    expect(s.diff).toBeUndefined()
    expect(formatPlan(plan)).not.toMatch(/s3cret|old-secret/)
    expect(plan.items.find((i) => i.resource.id === other.id)?.restart).toBe(true)
  })

  test('owner and mode drift is an update without rewriting the content', () => {
    const f = converged()
    f.files.set('/etc/x/x.conf', { ...f.files.get('/etc/x/x.conf')!, owner: 'x', mode: '0644' })
    const c = computePlan(spec, f).items.find((i) => i.resource.id === conf.id)!
    expect(c.changes).toEqual(['owner x:x → root:x', 'mode 0644 → 0640'])
    expect(c.writeContent).toBe(false)
  })

  test('a stopped or disabled service is started or enabled, not restarted', () => {
    const f = converged()
    f.units.set('x.service', { load: 'loaded', active: 'failed', enabled: 'disabled', activeSince: '0' })
    const s = computePlan(spec, f).items.find((i) => i.resource.id === svc.id)!
    expect(s).toMatchObject({ start: true, enable: true, changes: ['start', 'enable'] })
  })

  test('binaries pick the host architecture; a missing one is an error', () => {
    const f = converged()
    f.files.set('/usr/local/bin/x', { ...f.files.get('/usr/local/bin/x')!, sha256: 'b'.repeat(64) })
    const b = computePlan(spec, f).items.find((i) => i.resource.id === bin.id)!
    expect(b).toMatchObject({ action: 'update', writeContent: true })
    expect(() => computePlan(spec, { ...converged(), arch: 'aarch64' })).toThrow(/no build for aarch64/)
    expect(() => computePlan(spec, { ...converged(), arch: 'riscv64' })).toThrow(/unsupported architecture/)
  })
})

describe('server data', () => {
  const users = dataFile('/etc/x/users', '', { group: 'x', mode: '0640' })
  const dataSpec: DeploySpec = { resources: [users], ports: [] }
  it('is created when absent, without showing its content', () => {
    const plan = computePlan(dataSpec, facts({ files: new Map([['/etc/x/users', { exists: false }]]) }))
    expect(plan.items[0]).toMatchObject({ action: 'create', writeContent: true, diff: undefined })
    expect(applyScript(plan)).toContain('w /etc/x/users root x 0640')
  })
  it('is never rewritten, re-owned or read back once it exists', () => {
    const have = { exists: true, owner: 'x', group: 'x', mode: '0600', sha256: sha256('a:b\n'), size: 4 }
    const plan = computePlan(dataSpec, facts({ files: new Map([['/etc/x/users', have]]) }))
    expect(plan.items[0]).toMatchObject({ action: 'unchanged', changes: [] })
    expect(plan.changed).toBe(0)
    expect(applyScript(plan)).toBe('')
    expect(factsScript([users])).toMatch(/^ {2}\/etc\/x\/users 0 [0-9a-f]{64}$/m)
  })
  it('cannot be what a service restarts on', () => {
    const problems = checkSpec({ resources: [users, service('x.service', { restartOn: [users] })], ports: [] })
    expect(problems).toEqual(['service:x.service: restarts on server data file:/etc/x/users'])
  })
})

describe('apply script', () => {
  test('orders the work and validates before restarting', () => {
    const f = converged()
    f.packages.clear()
    f.files.set('/etc/x/x.conf', { ...f.files.get('/etc/x/x.conf')!, sha256: 'old' })
    f.files.set('/etc/systemd/system/x.service', { exists: false })
    const script = applyScript(computePlan(spec, f))
    const at = (s: string) => {
      const i = script.indexOf(s)
      expect(i, s).toBeGreaterThan(0)
      return i
    }
    const order = [
      at('debconf-set-selections'),
      at('install --no-install-recommends x'),
      at('w /etc/x/x.conf root x 0640'),
      at('w /etc/systemd/system/x.service'),
      at('systemctl daemon-reload'),
      at('( x --check )'),
      at('systemctl restart x.service'),
    ]
    expect([...order].sort((a, b) => a - b)).toEqual(order)
    // A failed restart puts back exactly this service's files (a unit file among them: daemon-reload).
    expect(script).toContain(
      'if systemctl restart x.service; then say restart x.service; else restart_failed restart x.service 1 /etc/x/x.conf /etc/systemd/system/x.service /usr/local/bin/x; fi',
    )
    expect(script.indexOf('[ -z "$failed" ] || fail "$failed"')).toBeGreaterThan(at('systemctl restart x.service'))
    expect(script).not.toContain('/etc/x/secret')
    expect(script).toContain(Buffer.from(CONF).toString('base64'))
  })

  test('no daemon-reload when no unit file changed', () => {
    const f = converged()
    f.files.set('/etc/x/x.conf', { ...f.files.get('/etc/x/x.conf')!, sha256: 'old' })
    expect(applyScript(computePlan(spec, f))).not.toContain('daemon-reload')
  })

  test('parses the result lines', () => {
    const ok = parseApplyOutput(
      '@@installed\t2\n@@wrote\t/etc/a\nnoise\n@@restart\tx.service\n@@start\ty.service\n@@done\n',
    )
    expect(ok).toMatchObject({
      ok: true,
      installed: 2,
      written: ['/etc/a'],
      restarted: ['x.service'],
      started: ['y.service'],
      log: 'noise',
    })
    const bad = parseApplyOutput('@@wrote\t/etc/a\n@@fail\tvalidation of x failed\n')
    expect(bad).toMatchObject({ ok: false, error: 'validation of x failed' })
    expect(parseApplyOutput('', 'sh: 1: oops\n').error).toMatch(/ended early: sh: 1: oops/)
  })
})

describe('command resources', () => {
  const cert = command('cert', 'create a certificate', 'test -s /etc/c.pem', 'touch /etc/c.pem', 'before-services')
  const late = command('late', 'ask the ACME server', 'false', 'echo late', 'after-services')
  it('run only when their test fails', () => {
    const done = computePlan({ resources: [cert], ports: [] }, facts({ commands: new Map([['command:cert', true]]) }))
    expect(done.items[0]?.action).toBe('unchanged')
    expect(done.changed).toBe(0)
    const todo = computePlan({ resources: [cert], ports: [] }, facts({ commands: new Map([['command:cert', false]]) }))
    expect(todo.items[0]).toMatchObject({ action: 'create', changes: ['create a certificate'] })
  })
  it('are gathered in the facts script and ordered around the services in the apply script', () => {
    expect(factsScript([cert])).toContain("if ( test -s /etc/c.pem ) >/dev/null 2>&1 </dev/null; then printf 'cmd")
    const svc = service('x.service', { restartOn: [cert] })
    const plan = computePlan({ resources: [cert, late, svc], ports: [] }, facts())
    const script = applyScript(plan)
    const a = script.indexOf('touch /etc/c.pem')
    const b = script.indexOf('systemctl restart')
    const c = script.indexOf('echo late')
    expect(a).toBeGreaterThan(0)
    expect(b).toBeGreaterThan(a)
    expect(c).toBeGreaterThan(b)
    expect(script).toContain('rollback; fail "create a certificate failed')
  })
})
