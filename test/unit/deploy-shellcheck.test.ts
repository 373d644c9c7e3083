/**
 * The shell the deploy builds for the host (facts and apply scripts of the whole dovecot stack,
 * every step included) passes shellcheck, like the .sh files `npm run lint` checks.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { applyScript } from '../../src/deploy/apply.js'
import { emptyFacts, factsScript } from '../../src/deploy/facts.js'
import { computePlan } from '../../src/deploy/plan.js'
import { buildTestStack } from '../helpers/stack.js'

const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0

describe.skipIf(!hasShellcheck)('generated host shell passes shellcheck', () => {
  const check = (script: string) => {
    // SC2235: `unless` tests and commands run in a subshell on purpose (an `exit` in one must not
    // end the script).
    const r = spawnSync('shellcheck', ['--shell=sh', '--exclude=SC2235', '-'], { input: script, encoding: 'utf8' })
    return r.stdout
  }
  for (const mode of ['acme', 'self-signed'] as const) {
    it(`for a fresh host, TLS ${mode}`, async () => {
      const domain = mode === 'acme' ? 'chat.example.org' : '203.0.113.5'
      const config = buildConfig({ path: 'x', force: false, domain, profile: 'dovecot', acmeEmail: 'a@example.org' })
      const spec = await buildTestStack(config, { irohRelay: { source: '/tmp/iroh-relay.tar.gz' } })
      const plan = computePlan(spec, { ...emptyFacts(), uid: 0, arch: 'x86_64' })
      expect(plan.changed).toBe(spec.resources.length)
      expect(check(applyScript(plan))).toBe('')
      expect(check(factsScript(spec.resources))).toBe('')
    })
  }
  it('finds a problem when there is one', () => {
    expect(check('echo $1 $(ls)\n')).toContain('SC2086')
    expect(execFileSync('shellcheck', ['--version'], { encoding: 'utf8' })).toMatch(/version: \d/)
  })
})
