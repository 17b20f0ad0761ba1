#!/usr/bin/env bash
# Same-run A/B of REST publish between builds of the service: for each
# round, each binary in turn on a fresh store (64 connections, 5 s, against
# the no-op ceiling started once), printing its rate, its ratio to the no-op
# measured just before it, and the server's CPU per request (/proc).
#   bench/ab-rest.sh memory|sqlite ROUNDS BINARY... (from the repository root)
# e.g. copy target/release/event-pipeline to /tmp/before, change, build,
# then: bench/ab-rest.sh sqlite 3 /tmp/before target/release/event-pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 memory|sqlite ROUNDS BINARY..." >&2; exit 2; }
STORE=$1 ROUNDS=$2
shift 2
cargo build --release -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
PORT=${SERVICE_PORT:-18001}
NOOP_PORT=${NOOP_PORT:-18101}
DB_DIR=$(mktemp -d)
SERVER= NOOP=
cleanup() { kill $SERVER $NOOP 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DB_DIR"; }
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return; sleep 0.1; done; echo "server did not start" >&2; exit 1; }

"$BENCH" noop-server --port "$NOOP_PORT" 2>/dev/null &
NOOP=$!
sleep 0.5
for round in $(seq "$ROUNDS"); do
  for binary in "$@"; do
    rm -f "$DB_DIR"/events.db*
    env EVENT_STORE="$STORE" HOST=127.0.0.1 PORT="$PORT" DATABASE_PATH="$DB_DIR/events.db" \
      LOG_LEVEL=WARNING RATE_LIMIT_PUBLISH=1000000/second "$binary" 2>/dev/null &
    SERVER=$!
    wait_up "http://127.0.0.1:$PORT/health"
    before=$(ticks "$SERVER")
    out=$("$BENCH" --url "http://127.0.0.1:$PORT" rest --connections 64 --duration 5 \
      --ceiling-url "http://127.0.0.1:$NOOP_PORT" | tail -1)
    after=$(ticks "$SERVER")
    kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=
    python3 - "$binary" "$round" "$before" "$after" "$(getconf CLK_TCK)" "$out" <<'PY'
import json, sys
binary, rnd, before, after, hz, out = sys.argv[1:]
run = json.loads(out)
n = run["created"] + run["other"]
us = (int(after) - int(before)) / int(hz) / n * 1e6
print(f"round {rnd}  {binary:<40} {run['per_s']:>9.0f} /s  no-op {run['ceiling_per_s']:>9.0f} /s  "
      f"ratio {run['ratio']:.2f}  server {us:5.1f} us/req")
PY
  done
done
