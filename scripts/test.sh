#!/usr/bin/env bash
# `npm test`: every stage of the test suite in order, stopping at the first that fails, and at the
# end how long each took (the suite's budget is 25 minutes on a 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."

results=$(mktemp -d)
# The e2e files spend most of their time waiting on their test hosts (apt, services starting, mail
# and calls in flight), so three run at once on two cores; each file's hosts and fences have their
# own names and addresses. CHATMAIL_E2E_WORKERS=1 runs them one after another.
e2e_workers=${CHATMAIL_E2E_WORKERS:-3}
[[ $e2e_workers =~ ^[1-9]$ ]] || { echo "CHATMAIL_E2E_WORKERS must be 1..9, not '$e2e_workers'" >&2; exit 2; }
stages=(
  "build|npm run --silent build"
  "typecheck|npm run --silent typecheck"
  "test-deps|npm run --silent test:deps"
  "lint|npm run --silent lint"
  "unit+integration|npx vitest run test/unit test/integration --reporter=default --reporter=json --outputFile.json=$results/unit.json"
  "e2e|npx vitest run test/e2e --maxWorkers=$e2e_workers --minWorkers=1 --reporter=default --reporter=json --outputFile.json=$results/e2e.json"
)
report=()
summary() {
  local total=0 line
  echo
  echo "test stages:"
  for line in "${report[@]}"; do
    printf '  %-18s %6ss  %s\n' "${line%%|*}" "$(echo "$line" | cut -d'|' -f2)" "$(echo "$line" | cut -d'|' -f3)"
    total=$((total + $(echo "$line" | cut -d'|' -f2)))
  done
  printf '  %-18s %6ss\n' total "$total"
  node scripts/test-summary.mjs "$results/unit.json" "$results/e2e.json"
  rm -rf "$results"
}
trap summary EXIT
for stage in "${stages[@]}"; do
  name=${stage%%|*}
  cmd=${stage#*|}
  start=$(date +%s)
  echo "== $name: $cmd" >&2
  if bash -c "$cmd"; then
    report+=("$name|$(($(date +%s) - start))|ok")
  else
    rc=$?
    report+=("$name|$(($(date +%s) - start))|FAILED (exit $rc)")
    exit "$rc"
  fi
done
