#!/usr/bin/env bash
# Runs schemathesis (property-based API testing from the OpenAPI document)
# against the service in three configurations: auth off; auth on with one
# key; auth on with an admin key, restricted CORS origins and the default
# rate limits. The WebSocket handshakes are kept out of the document's
# `paths` (under `x-websockets`), so they are not sent as plain requests. Each server is
# the debug build on a fresh SQLite file and a free port; the document it is
# tested against is the one it serves, so it describes that configuration.
#
#   scripts/schemathesis.sh                       # 50 examples per operation
#   EXAMPLES=300 SEED=random scripts/schemathesis.sh
#
# CI uses a fixed seed (SEED=random explores further). The stateful phase
# runs apart, without the negative_data_rejection check: there schemathesis
# 4.32 counts a request that only adds an undeclared query parameter
# (`GET /events?=null`) as schema-violating (upstream issue 3730, fixed for
# the other phases in PRs 4087 and 4762), and its cases depend on the ids
# the server answers, so a fixed seed does not pin them. The service ignores
# unknown query parameters on purpose, as the Python service did, so that
# clients that send extra ones keep working. Every other phase runs every
# check.
#
# schemathesis comes from PyPI into a virtualenv under ~/.cache (created on
# first use). Exit status: 0 when every run finds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
EXAMPLES=${EXAMPLES:-50}
SEED=${SEED:-20261202}
VENV=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/event-pipeline/schemathesis-$VERSION}

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "== installing schemathesis $VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi

cargo build --quiet --bin event-pipeline
binary=target/debug/event-pipeline
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run NAME KEY VAR=VALUE...: serves with those variables, sends KEY (if any)
# as X-API-Key, and runs every check on every operation.
run() {
  local name=$1 key=$2
  shift 2
  local port dir
  port=$(free_port)
  dir="$work/$name"
  mkdir -p "$dir"
  env HOST=127.0.0.1 PORT="$port" DATABASE_PATH="$dir/events.db" "$@" \
    "$binary" >"$dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    if curl -fs "http://127.0.0.1:$port/health" >/dev/null; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then
      echo "the server ($name) did not start:"; cat "$dir/server.log"; exit 1
    fi
    sleep 0.1
  done
  echo "== schemathesis: $name"
  local auth=() seed=()
  [ -n "$key" ] && auth=(-H "X-API-Key: $key")
  [ "$SEED" != random ] && seed=(--seed "$SEED")
  local status=0 url="http://127.0.0.1:$port/openapi.json"
  {
    "$VENV/bin/schemathesis" run "$url" "${auth[@]}" "${seed[@]}" --no-color \
      --phases examples,coverage,fuzzing --checks all --max-examples "$EXAMPLES" &&
    "$VENV/bin/schemathesis" run "$url" "${auth[@]}" "${seed[@]}" --no-color \
      --phases stateful --checks all --exclude-checks negative_data_rejection \
      --max-examples "$EXAMPLES"
  } >"$dir/schemathesis.txt" 2>&1 || status=$?
  sed -n "/WARNINGS/,/^=* SUMMARY/p" "$dir/schemathesis.txt" | head -n 30
  grep -E "^=+ .* in [0-9.]+s =+$" "$dir/schemathesis.txt"
  kill "$server"; wait "$server" 2>/dev/null || true
  server=""
  if [ "$status" -ne 0 ]; then
    cat "$dir/schemathesis.txt"
    echo "schemathesis found failures ($name); the server's log:"
    tail -n 50 "$dir/server.log"
    exit "$status"
  fi
}

# An occurred_at further ahead of the clock than MAX_CLOCK_SKEW_SECONDS is
# refused by a rule of time, which no schema can state (the document says it
# in words; tests/occurred_at.rs checks it): every configuration here allows
# any instant, so that the document's rules are the whole of what is checked.
any_time=MAX_CLOCK_SKEW_SECONDS=400000000000
# Generous limits, so that requests reach the handlers rather than a 429...
roomy=(RATE_LIMIT_PUBLISH=100000/minute RATE_LIMIT_QUERY=100000/minute RATE_LIMIT_ADMIN=100000/minute)
run auth-off "" REQUIRE_AUTH=false "${roomy[@]}" "$any_time"
run auth-on k-schemathesis REQUIRE_AUTH=true API_KEY=k-schemathesis "${roomy[@]}" "$any_time"
# ...and the defaults, so that 429s come too.
run admin-key admin-schemathesis REQUIRE_AUTH=true API_KEY=k-schemathesis \
  ADMIN_API_KEY=admin-schemathesis CORS_ORIGINS=https://school.example "$any_time"
echo "== schemathesis: no failures in any configuration"
