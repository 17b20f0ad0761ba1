#!/usr/bin/env bash
# Runs every benchmark scenario of event-pipeline-bench against a fresh
# release build of the service, with the same-run ceilings, and prints each
# scenario's table and JSON line. Takes about 8 minutes on 2 cores.
#   bench/run-all.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p event-pipeline -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
DB_DIR=$(mktemp -d)
SERVICE_PORT=${SERVICE_PORT:-18001}
NOOP_PORT=${NOOP_PORT:-18101}
FANOUT_PORT=${FANOUT_PORT:-18201}
CEILING=http://127.0.0.1:$FANOUT_PORT
URL=http://127.0.0.1:$SERVICE_PORT

cleanup() { kill ${SERVICE:-} ${NOOP:-} ${FANOUT:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DB_DIR" "${FANOUT_LINES:-}"; }
trap cleanup EXIT

# Each ceiling and the service must be the ones started here: a port still
# held by an earlier run would otherwise be measured in their place.
for port in "$NOOP_PORT" "$FANOUT_PORT" "$SERVICE_PORT"; do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "port $port is in use: stop what holds it, or set SERVICE_PORT, NOOP_PORT, FANOUT_PORT" >&2
    exit 1
  fi
done
"$BENCH" noop-server --port "$NOOP_PORT" 2>/dev/null &
NOOP=$!
# The fan-out ceiling: a bare broadcaster (no store, no filters), the same
# design as ../shared/yardstick's fanout_limit. Each fan-out row below is
# followed by the same scenario against it.
"$BENCH" fanout-ceiling --port "$FANOUT_PORT" 2>/dev/null &
FANOUT=$!
start_service() {
  rm -rf "$DB_DIR"/*
  HOST=127.0.0.1 PORT=$SERVICE_PORT DATABASE_PATH="$DB_DIR/events.db" LOG_LEVEL=WARNING \
  RATE_LIMIT_PUBLISH=1000000/second RATE_LIMIT_WS_PUBLISH=1000000/second RATE_LIMIT_QUERY=1000000/second \
  MAX_WS_CONNECTIONS_PER_IP=100000 MAX_SUBSCRIBERS=20000 \
    target/release/event-pipeline &
  SERVICE=$!
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "service did not start" >&2; exit 1
}
stop_service() { kill -TERM "$SERVICE"; wait "$SERVICE" || true; }

start_service
# Publish rows alternate the ceiling and the service three times and report
# the median of the rounds' ratios: this machine's speed drifts by half
# within minutes, so a ceiling measured once, before, can be off.
"$BENCH" --url "$URL" rest --connections 64 --duration 5 --rounds 3 --ceiling-url "http://127.0.0.1:$NOOP_PORT"
stop_service; start_service
"$BENCH" --url "$URL" rest --connections 256 --duration 5 --rounds 3 --ceiling-url "http://127.0.0.1:$NOOP_PORT"
stop_service; start_service
"$BENCH" --url "$URL" ws-publish --connections 4 --in-flight 256 --duration 5 --rounds 3 --sqlite-ceiling
stop_service; start_service
# 4,096 in flight: a full batch (1,024) committing while the next one queues,
# as in the ceiling's back-to-back batches of 1,000.
"$BENCH" --url "$URL" ws-publish --connections 16 --in-flight 256 --duration 5 --rounds 3 --sqlite-ceiling
stop_service; start_service
for rate in 100 200 300 500; do
  "$BENCH" --url "$URL" fanout --subscribers 1000 --rate "$rate" --duration 10
  echo "-- the same against the fan-out ceiling"
  "$BENCH" --url "$CEILING" fanout --subscribers 1000 --rate "$rate" --duration 10
done
# 1M deliveries/s, the goal's row: three rounds, each the service then the
# ceiling, and the median of the rounds' p99 ratios (one run's p99 moves by
# a third from run to run on this machine).
FANOUT_LINES=$(mktemp)
for round in 1 2 3; do
  "$BENCH" --url "$URL" fanout --subscribers 1000 --rate 1000 --duration 10 | tee -a "$FANOUT_LINES"
  echo "-- the same against the fan-out ceiling"
  "$BENCH" --url "$CEILING" fanout --subscribers 1000 --rate 1000 --duration 10 | tee -a "$FANOUT_LINES"
done
python3 - "$FANOUT_LINES" <<'PY'
import json, statistics, sys
p99 = [json.loads(line)["latency"]["p99_ms"] for line in open(sys.argv[1]) if line.startswith("{")]
pairs = list(zip(p99[0::2], p99[1::2]))
ratios = [service / ceiling for service, ceiling in pairs]
print("fan-out 1,000 x 1,000/s, p99 service / bare broadcaster by round: "
      + " / ".join(f"{s:.1f} / {c:.1f} ms ({r:.2f})" for (s, c), r in zip(pairs, ratios))
      + f"; median ratio {statistics.median(ratios):.2f}")
PY
"$BENCH" --url "$URL" fanout --subscribers 100 --rate 2000 --duration 10
echo "-- the same against the fan-out ceiling"
"$BENCH" --url "$CEILING" fanout --subscribers 100 --rate 2000 --duration 10
stop_service; start_service
"$BENCH" --url "$URL" idle --subscribers 10000 --server-pid "$SERVICE"
echo "-- the same against the fan-out ceiling"
"$BENCH" --url "$CEILING" idle --subscribers 10000 --server-pid "$FANOUT"
stop_service; start_service
"$BENCH" --url "$URL" classroom --sessions 10000 --duration 20
stop_service
# A database of 1,000,000 events: stats, queries, a large delete under load.
SERVICE_PORT=$SERVICE_PORT bench/big.sh 1000000 sqlite
