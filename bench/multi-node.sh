#!/usr/bin/env bash
# The figures of README "Running several nodes", in one run on this machine:
# REST and WebSocket publish on PostgreSQL and on SQLite, each as a ratio to
# its own store's batched-append ceiling measured in the same run; fan-out
# and the classroom scenario with publishers on node A and subscribers on A
# only (one node) or on A and B (two nodes), over PostgreSQL and NATS.
# Needs the PostgreSQL and NATS of this machine kind (127.0.0.1:5432, :4222).
#   bench/multi-node.sh            (from the repository root; ~6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p event-pipeline -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
PG=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=ep_bench_$$
PORT_A=18401 PORT_B=18402
A=http://127.0.0.1:$PORT_A B=http://127.0.0.1:$PORT_B
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

fresh_db() {
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
  psql "$PG/postgres" -qc "CREATE DATABASE $DB" >/dev/null
}
node() { # port, then extra VAR=value pairs
  local port=$1; shift
  env HOST=127.0.0.1 PORT="$port" LOG_LEVEL=WARNING \
    RATE_LIMIT_PUBLISH=1000000/second RATE_LIMIT_WS_PUBLISH=1000000/second RATE_LIMIT_QUERY=1000000/second \
    MAX_WS_CONNECTIONS_PER_IP=100000 MAX_SUBSCRIBERS=20000 "$@" \
    target/release/event-pipeline &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readiness" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "node on $port did not start" >&2; exit 1
}
stop_nodes() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
}
on_postgres() { node "$1" EVENT_STORE=postgres DATABASE_URL="$PG/$DB" BUS_PREFIX="bench-$$" "${@:2}"; }

echo "### publish: PostgreSQL vs SQLite, each against its own store's ceiling"
fresh_db; on_postgres $PORT_A
$BENCH --url $A rest --connections 64 --duration 10 --postgres-ceiling "$PG/postgres"
stop_nodes; fresh_db; on_postgres $PORT_A
$BENCH --url $A ws-publish --connections 4 --in-flight 256 --duration 10 --postgres-ceiling "$PG/postgres"
stop_nodes; rm -rf "$DIR"/*; node $PORT_A DATABASE_PATH="$DIR/events.db"
$BENCH --url $A rest --connections 64 --duration 10 --sqlite-ceiling
stop_nodes; rm -rf "$DIR"/*; node $PORT_A DATABASE_PATH="$DIR/events.db"
$BENCH --url $A ws-publish --connections 4 --in-flight 256 --duration 10 --sqlite-ceiling
stop_nodes

echo "### fan-out and classroom: one node vs two (PostgreSQL + NATS)"
for rate in 200 500; do
  fresh_db; on_postgres $PORT_A BROADCASTER=nats; on_postgres $PORT_B BROADCASTER=nats
  $BENCH --url $A fanout --subscribers 1000 --rate $rate --duration 10
  $BENCH --url $A --subscribe-url $A,$B fanout --subscribers 1000 --rate $rate --duration 10
  stop_nodes
done
fresh_db; on_postgres $PORT_A BROADCASTER=nats; on_postgres $PORT_B BROADCASTER=nats
$BENCH --url $A classroom --sessions 5000 --duration 20
$BENCH --url $A --subscribe-url $A,$B classroom --sessions 5000 --duration 20
stop_nodes
