// One closing line over the suite's vitest runs, from their JSON reports (scripts/test.sh):
// `tests: N passed, N failed, N skipped`. Reports that are missing (a stage that did not run) count nothing.
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
}
if (passed + failed > 0) console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
