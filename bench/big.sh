#!/usr/bin/env bash
# The data-size scenario: fills a store with N events of the realistic mix
# over a 120-day term, starts a release build of the service on it (cold
# start to /health timed), then runs `event-pipeline-bench big`: stats, the
# contract's queries, a delete of the oldest events under 8 publishing
# connections (publish latency during it), stats consistency after. The
# delete takes the oldest 17% (the share a district's term loses to a
# 3-week retention), or 1,000,000 events from 5,000,000 up; DELETE_FRACTION
# sets another share.
#   bench/big.sh [N] [sqlite|postgres]     (default 1000000 sqlite)
# postgres uses a database of its own on $PG_URL (default the local server).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
STORE=${2:-sqlite}
if [ "$N" -ge 5000000 ]; then DEFAULT_FRACTION=$(awk "BEGIN {print 1000000 / $N}"); else DEFAULT_FRACTION=0.17; fi
FRACTION=${DELETE_FRACTION:-$DEFAULT_FRACTION}
PORT=${SERVICE_PORT:-18301}
URL=http://127.0.0.1:$PORT
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
cargo build --release -p event-pipeline -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
DIR=$(mktemp -d)
DB=ep_big_$$
cleanup() {
  kill "${SERVICE:-}" 2>/dev/null || true; wait 2>/dev/null || true
  rm -rf "$DIR"
  [ "$STORE" = postgres ] && psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT
case $STORE in
  sqlite)
    "$BENCH" fill --events "$N" --database-path "$DIR/events.db"
    ls -l "$DIR"/events.db* | awk '{s+=$5} END {printf "database: %.0f MB\n", s/1e6}'
    export EVENT_STORE=sqlite DATABASE_PATH="$DIR/events.db" ;;
  postgres)
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
    "$BENCH" fill --events "$N" --database-url "$PG_URL/$DB"
    psql "$PG_URL/$DB" -qAtc "SELECT 'database: ' || pg_database_size('$DB') / 1000000 || ' MB'"
    export EVENT_STORE=postgres DATABASE_URL="$PG_URL/$DB" ;;
  *) echo "store: sqlite or postgres" >&2; exit 2 ;;
esac
sync
started=$(date +%s%N)
HOST=127.0.0.1 PORT=$PORT LOG_LEVEL=${LOG_LEVEL:-WARNING} RATE_LIMIT_PUBLISH=1000000/second \
RATE_LIMIT_QUERY=1000000/second RATE_LIMIT_ADMIN=1000/second target/release/event-pipeline &
SERVICE=$!
until curl -sf "$URL/health" >/dev/null 2>&1; do
  kill -0 "$SERVICE" 2>/dev/null || { echo "service did not start" >&2; exit 1; }
  sleep 0.005
done
echo "cold start to /health: $(( ($(date +%s%N) - started) / 1000000 )) ms"
"$BENCH" --url "$URL" big --delete-fraction "$FRACTION"
