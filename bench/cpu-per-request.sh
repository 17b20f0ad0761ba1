#!/usr/bin/env bash
# CPU time per request of the server and of the load generator during a REST
# publish run, read from /proc: where the no-op ceiling and the service spend
# their two cores. Starts the no-op server, the service on the in-memory
# store (with metrics and with METRICS=false: what recording them costs) and
# the service on SQLite, one after the other.
#   bench/cpu-per-request.sh [connections]     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p event-pipeline -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
CONNS=${1:-64}
PORT=${SERVICE_PORT:-18001}
DB_DIR=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DB_DIR"; }
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # name url
  local before after
  before=$(ticks "$SERVER")
  /usr/bin/time -f "%U %S" -o "$DB_DIR/client.time" \
    "$BENCH" --url "$2" rest --connections "$CONNS" --duration 8 | tail -1 > "$DB_DIR/out.json"
  after=$(ticks "$SERVER")
  python3 - "$1" "$before" "$after" "$(getconf CLK_TCK)" "$DB_DIR" <<'PY'
import json, sys
name, before, after, hz, tmp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
run = json.loads(open(f"{tmp}/out.json").read())
n = run["created"] + run["other"]
server = (after - before) / hz
user, system = map(float, open(f"{tmp}/client.time").read().split()[-2:])
print(f"{name:<16} {run['per_s']:>9.0f} req/s   server {server / n * 1e6:5.1f} us/req "
      f"({server / 8:.2f} cores)   load generator {(user + system) / n * 1e6:5.1f} us/req "
      f"({(user + system) / 8:.2f} cores)")
PY
}
wait_up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return; sleep 0.1; done; echo "server did not start" >&2; exit 1; }
service() { # env...
  env "$@" HOST=127.0.0.1 PORT="$PORT" DATABASE_PATH="$DB_DIR/events.db" LOG_LEVEL=WARNING \
    RATE_LIMIT_PUBLISH=1000000/second target/release/event-pipeline 2>/dev/null &
  SERVER=$!
  wait_up "http://127.0.0.1:$PORT/health"
}
stop() { kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=; rm -f "$DB_DIR"/events.db*; }

"$BENCH" noop-server --port "$PORT" 2>/dev/null &
SERVER=$!
sleep 0.5
measure "no-op" "http://127.0.0.1:$PORT"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
service EVENT_STORE=memory; measure "memory store" "http://127.0.0.1:$PORT"; stop
service EVENT_STORE=memory METRICS=false; measure "memory, no metrics" "http://127.0.0.1:$PORT"; stop
service EVENT_STORE=sqlite; measure "SQLite store" "http://127.0.0.1:$PORT"; stop
