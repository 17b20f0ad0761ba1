#!/usr/bin/env bash
# Same-run A/B of WebSocket publish or fan-out between builds of the
# service: for each round, each binary in turn on a fresh SQLite store,
# printing the scenario's latencies and the server's CPU (/proc ticks, all
# and in user space).
#   bench/ab.sh ws|fanout ROUNDS BINARY...   (from the repository root)
# ws: `ws-publish --connections 4 --in-flight 256 --duration 8`;
# fanout: `fanout --subscribers 1000 --rate ${RATE:-1000} --duration 10`.
# RUNS=N (default 1) runs the scenario N times into each server, as
# run-all's rounds do: the database grows from run to run.
# e.g. copy target/release/event-pipeline to /tmp/before, change, build,
# then: bench/ab.sh fanout 3 /tmp/before target/release/event-pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 ws|fanout ROUNDS BINARY..." >&2; exit 2; }
SCENARIO=$1 ROUNDS=$2 RUNS=${RUNS:-1}
shift 2
case "$SCENARIO" in ws|fanout) ;; *) echo "scenario: ws or fanout" >&2; exit 2 ;; esac
cargo build --release -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
PORT=${SERVICE_PORT:-18001}
URL=http://127.0.0.1:$PORT
DB_DIR=$(mktemp -d)
SERVER=
cleanup() { kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DB_DIR"; }
trap cleanup EXIT
if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
  echo "port $PORT is in use: stop what holds it, or set SERVICE_PORT" >&2; exit 1
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
summary() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
if d["scenario"] == "fanout":
    l, f = d["latency"], d["first_delivery_latency"]
    print("p50 %.1f  p99 %.1f ms  first delivery p50 %.1f  p99 %.1f ms  committed mean %.2f ms  missing %d"
          % (l["p50_ms"], l["p99_ms"], f["p50_ms"], f["p99_ms"], d["server_stage_means_ms"].get("committed", 0), d["missing"]))
else:
    l = d["latency"]
    print("%d /s  ack p50 %.1f  p99 %.1f  p999 %.1f  max %.1f ms" % (d["events_per_s"], l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"]))
'
}
for round in $(seq "$ROUNDS"); do
  for binary in "$@"; do
    rm -rf "${DB_DIR:?}"/*
    HOST=127.0.0.1 PORT=$PORT DATABASE_PATH="$DB_DIR/events.db" LOG_LEVEL=WARNING \
    RATE_LIMIT_PUBLISH=1000000/second RATE_LIMIT_WS_PUBLISH=1000000/second RATE_LIMIT_QUERY=1000000/second \
    MAX_WS_CONNECTIONS_PER_IP=100000 MAX_SUBSCRIBERS=20000 "$binary" &
    SERVER=$!
    for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
    for run in $(seq "$RUNS"); do
      before=$(ticks "$SERVER") user_before=$(user_ticks "$SERVER")
      if [ "$SCENARIO" = ws ]; then
        line=$("$BENCH" --url "$URL" ws-publish --connections 4 --in-flight 256 --duration 8 | grep '^{')
      else
        line=$("$BENCH" --url "$URL" fanout --subscribers 1000 --rate "${RATE:-1000}" --duration 10 | grep '^{')
      fi
      after=$(ticks "$SERVER") user_after=$(user_ticks "$SERVER")
      printf 'round %s.%s  %-40s cpu %5d ticks (user %5d)  %s\n' "$round" "$run" "$binary" $((after - before)) $((user_after - user_before)) "$(echo "$line" | summary)"
    done
    kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=
  done
done
