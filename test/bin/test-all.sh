#!/bin/sh
# README's test command (`npm test`): installs everything, then type-check, lint, unit and integration
# tests against real PostgreSQL, Redis and Kafka started by test/global-setup.ts, then the
# version-dependent integration tests on every other PostgreSQL major (test/bin/test-pg-versions.ts).
set -eu
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
step "unit + integration tests (vitest)"
mkdir -p test-results
status=0
$PNPM exec vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json || status=$?
step "PostgreSQL 13, 14, 16, 17, 18: version-dependent integration tests"
# Fetches each missing build from Maven Central first (~15 MB each, once per machine), then one
# vitest run per major writing test-results/vitest-pg<MAJOR>.json (stale ones removed first).
$PNPM exec tsx --conditions=@walpurge/source test/bin/test-pg-versions.ts || status=1
step "summary"
node test/bin/summary.mjs test-results/vitest.json test-results/vitest-pg*.json || status=1
step "done"
exit $status
