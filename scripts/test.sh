#!/usr/bin/env bash
# The whole test suite on real Kafka and Postgres: brings up what the tests need (scripts/stack.sh infra, with
# a database of its own), runs `bun test`, and ends with one line "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

external="${DATABASE_URL:-}${KAFKA_BROKERS:-}"
[ -n "${DATABASE_URL:-}" ] || export PG_DB="${PG_DB:-product_views_test}"
# The suite's servers are its own: another data directory and other ports than `make up`'s, so a stack the user
# runs keeps running, and keeps its data, while the fault tests stop, kill and wipe theirs. Stopped at the end
# (KEEP_TEST_STACK=1 leaves them up for the next run).
export PV_DATA_DIR="${PV_DATA_DIR:-$ROOT/.data/test}"
export PG_PORT="${PG_PORT:-15432}" KAFKA_PORT="${KAFKA_PORT:-19092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
# Its Kafka also listens with TLS and SASL, and its Postgres takes TLS: test/integration/secured.test.ts.
[ -n "$external" ] || export PV_TEST_TLS=1
stop_stack() {
  [ -z "${KEEP_TEST_STACK:-}" ] && [ -z "$external" ] || return 0
  # Without the variables `env` exported: with them, stack.sh would take its own servers for external ones.
  (unset DATABASE_URL KAFKA_BROKERS; bash scripts/stack.sh down >/dev/null 2>&1) || echo "could not stop the test servers: see $PV_DATA_DIR/logs"
}
trap 'stop_stack; exit 130' INT TERM
bash scripts/stack.sh infra || { stop_stack; exit 1; }
bash scripts/stack.sh browser
eval "$(bash scripts/stack.sh env)"
# Fault tests stop and start Kafka and Postgres; only allowed on servers this project started.
if [ -z "$external" ]; then export PV_MANAGED_STACK=1; fi

mkdir -p .data
report=.data/test-results.xml
rm -f "$report"
bun test --timeout 120000 --reporter=junit --reporter-outfile="$report" "$@"
rc=$?
extra=()
# The schemathesis fuzz run (scripts/fuzz.sh) counts as one more test; skipped when a subset was asked for.
if [ $# -eq 0 ] && [ -z "${SKIP_FUZZ:-}" ]; then
  if FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-50}" bash scripts/fuzz.sh >.data/fuzz.log 2>&1; then
    extra+=(--passed "schemathesis fuzz (see .data/fuzz.log)")
  else
    echo "schemathesis fuzz failed:"; tail -40 .data/fuzz.log
    extra+=(--failed "schemathesis fuzz (see .data/fuzz.log)")
  fi
fi
# Last, on the whole suite only: the three-broker scenarios (test/integration/cluster.scenarios.ts) on a
# cluster of their own (KAFKA_NODES=3, replication 3, min.insync.replicas 2), started once the single broker is
# stopped, and stopped when they end. SKIP_CLUSTER=1 leaves them out.
cluster_report=.data/test-results-cluster.xml
rm -f "$cluster_report"
if [ $# -eq 0 ] && [ -z "${SKIP_CLUSTER:-}" ] && [ -n "${PV_MANAGED_STACK:-}" ]; then
  (
    unset KAFKA_BROKERS DATABASE_URL
    bash scripts/stack.sh stop kafka
    export KAFKA_NODES=3
    bash scripts/stack.sh start kafka || exit 1
    eval "$(bash scripts/stack.sh env)"
    bun test --timeout 400000 --reporter=junit --reporter-outfile="$cluster_report" ./test/integration/cluster.scenarios.ts
  ) || rc=1
  (unset KAFKA_BROKERS DATABASE_URL; KAFKA_NODES=3 bash scripts/stack.sh stop kafka)
  extra+=(--report "$cluster_report")
fi
stop_stack
bun scripts/junit-summary.ts "$report" "${extra[@]}" || rc=1
exit $rc
