#!/bin/sh
# README's test command (`npm test`): installs everything, then type-check, lint, unit and integration
# tests against real PostgreSQL, Redis and Kafka started by test/global-setup.ts, then the
# version-dependent integration tests on every other PostgreSQL major (test/bin/test-pg-versions.ts).
set -eu
# dash runs no EXIT trap when a signal kills it; exiting from these traps runs it, so the services
# and the running step are stopped (128 + the signal's number, as a shell reports it).
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
cd "$(dirname "$0")/../.."
. test/bin/pnpm.sh
started=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

step "system packages"
sh test/bin/ensure-system-deps.sh
step "pnpm install"
$PNPM install --frozen-lockfile
step "type-check (tsc -b)"
$PNPM exec tsc -b
step "lint (eslint)"
$PNPM exec eslint . --max-warnings 0
step "format (prettier --check)"
$PNPM exec prettier --check . --log-level warn
step "test services (PostgreSQL, Redis, Kafka)"
mkdir -p test-results
status=0
# Started once for the full suite and the version subset (Kafka's start is the slow part); the
# subset takes Redis and Kafka from here and starts its own PostgreSQL per version. node runs
# dev-env itself (tsx as a loader, not a wrapper process) so that the trap's SIGTERM reaches it and
# it stops everything it started.
services_env=test-results/services.env
services_log=test-results/services.log
rm -f "$services_env"
node --import tsx --conditions=@walpurge/source test/bin/dev-env.ts "$services_env" >"$services_log" 2>&1 &
services_pid=$!
step_pid=
# set +e: a kill or wait that fails here must not replace the script's exit status with its own.
# A failed run shows the services log's end: a service that died mid-run explains failures there.
trap 'rc=$?; set +e; stop "$step_pid" "$services_pid"; [ "$rc" -eq 0 ] || show_services_log; exit $rc' EXIT
show_services_log() { printf '\n==> end of %s\n' "$services_log"; tail -n 40 "$services_log"; }
stop() {
  for pid in "$@"; do [ -z "$pid" ] || kill "$pid" 2>/dev/null; done
  for pid in "$@"; do [ -z "$pid" ] || wait "$pid" 2>/dev/null; done
}
# The long steps run in the background: dash runs a trap only after a foreground command ends
# (vitest takes minutes), but at once during `wait`, and the exit trap stops the step.
run() {
  "$@" &
  step_pid=$!
  wait "$step_pid" || { rc=$?; step_pid=; return $rc; }
  step_pid=
}
# Progress: the log's new lines as they come (a first run fetches Kafka from Maven Central, which
# takes minutes). The limit is generous for that fetch on a slow CI runner; a hang still ends.
services_limit=900
services_started=$(date +%s)
shown=0
while [ ! -s "$services_env" ]; do
  lines=$(wc -l <"$services_log")
  if [ "$lines" -gt "$shown" ]; then sed -n "$((shown + 1)),${lines}p" "$services_log"; shown=$lines; fi
  if ! kill -0 "$services_pid" 2>/dev/null; then echo "test services failed to start"; exit 1; fi
  if [ "$(( $(date +%s) - services_started ))" -gt "$services_limit" ]; then
    echo "test services not ready after ${services_limit} s"
    exit 1
  fi
  sleep 1
done
. "./$services_env"
step "unit + integration tests (vitest)"
# The summary judges the run from the reports (a vitest exit status alone cannot tell a flake).
rerun_report=test-results/vitest-rerun.json
rm -f "$rerun_report" test-results/vitest.json
vitest_status=0
run node node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json || vitest_status=$?
if [ "$vitest_status" -ne 0 ]; then
  # One rerun of at most three files whose tests failed: a test that fails again fails the run; one
  # that passes alone is printed as FLAKY by the summary. More failed files means something broke.
  failed_files=$(node test/bin/failed-files.mjs test-results/vitest.json)
  count=$(printf '%s' "$failed_files" | grep -c . || true)
  if [ "$count" -ge 1 ] && [ "$count" -le 3 ]; then
    step "rerun, once, of the $count file(s) with failed tests"
    # shellcheck disable=SC2086 # one path per word: the test files' names have no spaces
    run node node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile.json="$rerun_report" $failed_files || true
  elif [ "$count" -eq 0 ]; then
    status=$vitest_status # failed outside any test: no rerun can vouch for it
  fi
fi
step "PostgreSQL 13, 14, 16, 17, 18: version-dependent integration tests"
# Fetches each missing build from Maven Central first (~15 MB each, once per machine), then one
# vitest run per major writing test-results/vitest-pg<MAJOR>.json (stale ones removed first).
run node --import tsx --conditions=@walpurge/source test/bin/test-pg-versions.ts || status=1
step "summary"
node test/bin/summary.mjs --rerun "$rerun_report" test-results/vitest.json test-results/vitest-pg*.json || status=1
step "done"
exit $status
