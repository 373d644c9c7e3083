import { relative } from 'node:path'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * Seconds each e2e file took alone on the 2-core CI machine (the closing lines of `npm test` print
 * them). The e2e stage runs several files at once (scripts/test.sh); starting the longest first
 * keeps one long file from starting last and running alone at the end. A file not listed (a new
 * one) counts as long: it usually deploys a host.
 */
const E2E_SECONDS: Record<string, number> = {
  'test/e2e/calls-13.test.ts': 300,
  'test/e2e/calls-12.test.ts': 250,
  'test/e2e/monitoring.test.ts': 205,
  'test/e2e/network-2026.test.ts': 200,
  'test/e2e/signup-12.test.ts': 170,
  'test/e2e/signup-13.test.ts': 170,
  'test/e2e/federation.test.ts': 170,
  'test/e2e/doctor-host.test.ts': 130,
  'test/e2e/acme.test.ts': 125,
  'test/e2e/deltachat.test.ts': 120,
  'test/e2e/deploy-12.test.ts': 110,
  'test/e2e/deploy-13.test.ts': 110,
  'test/e2e/engine.test.ts': 25,
  'test/e2e/ssh.test.ts': 15,
  'test/e2e/upgrade.test.ts': 5,
}
const UNLISTED_E2E_SECONDS = 200

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const e2e = (f: TestSpecification) => relative(process.cwd(), f.moduleId).startsWith('test/e2e/')
    if (!files.every(e2e)) return super.sort(files)
    const seconds = (f: TestSpecification) => E2E_SECONDS[relative(process.cwd(), f.moduleId)] ?? UNLISTED_E2E_SECONDS
    return [...files].sort((a, b) => seconds(b) - seconds(a))
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    sequence: { sequencer: LongestFirst },
  },
})
