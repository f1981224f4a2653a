#!/bin/sh
# README's run command (`npm start`): installs what is missing, then `walpurge quickstart`, which
# starts a throw-away PostgreSQL (wal_level=logical) + Redis (or uses DATABASE_URL / REDIS_URL),
# creates the demo schema, runs walpurge embedded and shows each invalidation live until Ctrl-C.
# Extra arguments go to the quickstart command: `npm start -- --help`, `npm start -- --duration 30`.
set -eu
cd "$(dirname "$0")/../.."
. test/bin/pnpm.sh
# Embedded mode needs no Kafka, so no java/maven either.
WALPURGE_SKIP_KAFKA=1 sh test/bin/ensure-system-deps.sh
$PNPM install --frozen-lockfile --reporter=silent
exec $PNPM --silent exec tsx --conditions=@walpurge/source packages/cli/src/main.ts quickstart "$@"
