#!/usr/bin/env bash
# What recording metrics costs on the hot path: REST publish (64
# connections) and fan-out (1,000 subscribers x 200 events/s), with
# METRICS=true and METRICS=false, alternating, ROUNDS times each, against the
# same-run no-op ceiling. Prints one JSON line per run.
#   bench/metrics-cost.sh            (from the repository root; ~4 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p event-pipeline -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
PORT=${SERVICE_PORT:-18001} NOOP_PORT=${NOOP_PORT:-18101} ROUNDS=${ROUNDS:-3}
URL=http://127.0.0.1:$PORT
DIR=$(mktemp -d)
"$BENCH" noop-server --port "$NOOP_PORT" 2>/dev/null & NOOP=$!
SERVICE=
cleanup() { kill "$NOOP" $SERVICE 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
start() {
  rm -rf "$DIR"/*
  HOST=127.0.0.1 PORT=$PORT DATABASE_PATH="$DIR/events.db" LOG_LEVEL=WARNING METRICS=$1 \
  RATE_LIMIT_PUBLISH=1000000/second RATE_LIMIT_WS_PUBLISH=1000000/second RATE_LIMIT_QUERY=1000000/second MAX_WS_CONNECTIONS_PER_IP=100000 \
    target/release/event-pipeline & SERVICE=$!
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "service did not start" >&2; exit 1
}
stop() { kill -TERM "$SERVICE"; wait "$SERVICE" || true; SERVICE=; }
for round in $(seq "$ROUNDS"); do
  for metrics in true false; do
    start $metrics
    echo "metrics=$metrics round=$round"
    "$BENCH" --url "$URL" rest --connections 64 --duration 8 --ceiling-url "http://127.0.0.1:$NOOP_PORT" | grep '^{'
    "$BENCH" --url "$URL" fanout --subscribers 1000 --rate 200 --duration 8 | grep '^{'
    stop
  done
done
