#!/usr/bin/env bash
# `npm test`: build, typecheck, the Debian packages the tests need and lint, one after another and
# stopping at the first that fails; then the two test stages, unit+integration and e2e, side by
# side (CHATMAIL_TEST_SERIAL=1: one after the other). At the end how long each stage took and the
# wall time of the whole (the suite's budget is 25 minutes on a 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."

results=$(mktemp -d)
# The e2e files run one after another by default. CHATMAIL_E2E_WORKERS=3 runs three at once (each
# file's hosts and fences have their own names and addresses): 22.6 min for the whole suite instead
# of about 30, but on 2026-12-07 one run failed engine.test.ts's "unreachable addresses" check
# that way (an error other than EHOSTUNREACH, not yet explained), so it is not the default yet.
e2e_workers=${CHATMAIL_E2E_WORKERS:-1}
[[ $e2e_workers =~ ^[1-9]$ ]] || { echo "CHATMAIL_E2E_WORKERS must be 1..9, not '$e2e_workers'" >&2; exit 2; }
serial=${CHATMAIL_TEST_SERIAL:-0}
[[ $serial =~ ^[01]$ ]] || { echo "CHATMAIL_TEST_SERIAL must be 0 or 1, not '$serial'" >&2; exit 2; }

stages=(
  "build|npm run --silent build"
  "typecheck|npm run --silent typecheck"
  "test-deps|npm run --silent test:deps"
  "lint|npm run --silent lint"
)
tests=(
  "e2e|npx vitest run test/e2e --maxWorkers=$e2e_workers --minWorkers=1 --reporter=default --reporter=json --outputFile.json=$results/e2e.json"
  "unit+integration|npx vitest run test/unit test/integration --reporter=default --reporter=json --outputFile.json=$results/unit.json"
)
report=()
t0=$(date +%s)
# shellcheck disable=SC2317 # called by the EXIT trap
summary() {
  local line
  echo
  echo "test stages:"
  for line in "${report[@]}"; do
    printf '  %-18s %6ss  %s\n' "${line%%|*}" "$(echo "$line" | cut -d'|' -f2)" "$(echo "$line" | cut -d'|' -f3)"
  done
  printf '  %-18s %6ss\n' "wall time" "$(($(date +%s) - t0))"
  node scripts/test-summary.mjs "$results/unit.json" "$results/e2e.json"
  rm -rf "$results"
}
trap summary EXIT

# run NAME CMD: runs a stage, records its time and result; returns its exit code.
run() {
  local name=$1 cmd=$2 start rc=0
  start=$(date +%s)
  echo "== $name: $cmd" >&2
  bash -c "$cmd" || rc=$?
  if [ "$rc" = 0 ]; then
    report+=("$name|$(($(date +%s) - start))|ok")
  else
    report+=("$name|$(($(date +%s) - start))|FAILED (exit $rc)")
  fi
  return "$rc"
}

for stage in "${stages[@]}"; do
  run "${stage%%|*}" "${stage#*|}" || exit $?
done

if [ "$serial" = 1 ]; then
  for stage in "${tests[@]}"; do
    run "${stage%%|*}" "${stage#*|}" || exit $?
  done
  exit 0
fi

# Side by side: each stage's output goes to its own log, printed whole when the stage ends, so the
# two never interleave; the stage's time and result come back through a file.
pids=()
for stage in "${tests[@]}"; do
  name=${stage%%|*}
  (
    rc=0
    run "$name" "${stage#*|}" >"$results/$name.log" 2>&1 || rc=$?
    printf '%s\n' "${report[-1]}" >"$results/$name.result"
    echo "== $name finished (exit $rc); its output:" >&2
    cat "$results/$name.log"
    exit "$rc"
  ) &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$?; done
for stage in "${tests[@]}"; do
  name=${stage%%|*}
  [ -f "$results/$name.result" ] && report+=("$(cat "$results/$name.result")")
done
exit "$failed"
