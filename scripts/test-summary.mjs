// One closing line over the suite's vitest runs, from their JSON reports (scripts/test.sh):
// `tests: N passed, N failed, N skipped`. Reports that are missing (a stage that did not run) count nothing.
// Before it, each e2e file's wall time, longest first (the weights in vitest.config.ts come from them).
import { existsSync, readFileSync } from 'node:fs'

let passed = 0
let failed = 0
let skipped = 0
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) continue
  const r = JSON.parse(readFileSync(file, 'utf8'))
  passed += r.numPassedTests
  failed += r.numFailedTests
  skipped += r.numPendingTests + r.numTodoTests
  const files = r.testResults
    .filter((t) => t.name.includes('/test/e2e/') && t.endTime > t.startTime)
    .map((t) => ({
      file: t.name.slice(t.name.indexOf('test/e2e/')),
      seconds: Math.round((t.endTime - t.startTime) / 1000),
    }))
    .sort((a, b) => b.seconds - a.seconds)
  if (files.length > 0) {
    console.log('e2e files (wall seconds, run side by side):')
    for (const f of files) console.log(`  ${String(f.seconds).padStart(6)}s  ${f.file}`)
  }
}
if (passed + failed > 0) console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
