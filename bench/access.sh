#!/usr/bin/env bash
# The cost of a credential, same run, same service process: REST publish
# with no credential, the legacy API key, a named key and a token (each
# against the no-op HTTP ceiling, rounds alternating), then subscribe
# handshakes per second with no credential and with a token.
# Usage: bench/access.sh   (release build; ports 18201-18202 must be free)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p event-pipeline -p ep-bench >/dev/null
BENCH=target/release/event-pipeline-bench
BIN=target/release/event-pipeline
SERVICE_PORT=${SERVICE_PORT:-18201}
NOOP_PORT=${NOOP_PORT:-18202}
URL=http://127.0.0.1:$SERVICE_PORT
DIR=$(mktemp -d)
trap 'kill $NOOP $SERVICE 2>/dev/null || true; rm -rf "$DIR"' EXIT
for port in "$NOOP_PORT" "$SERVICE_PORT"; do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "port $port is in use" >&2; exit 1
  fi
done
SECRET=bench-secret-of-at-least-thirty-two-bytes
KEY=bench-named-key-0123456789
printf '[[keys]]\nname = "bench"\nsha256 = "%s"\nroles = ["publish", "read"]\nrate_limit_publish = "1000000/second"\n' \
  "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" > "$DIR/keys.toml"
TOKEN=$(JWT_HS256_SECRET=$SECRET "$BIN" token --sub bench --roles publish,read --ttl 1h)

"$BENCH" noop-server --port "$NOOP_PORT" 2>/dev/null &
NOOP=$!
HOST=127.0.0.1 PORT=$SERVICE_PORT DATABASE_PATH="$DIR/events.db" LOG_LEVEL=WARNING \
RATE_LIMIT_PUBLISH=1000000/second RATE_LIMIT_QUERY=1000000/second \
MAX_WS_CONNECTIONS_PER_IP=100000 API_KEY=bench-legacy-key API_KEYS_FILE="$DIR/keys.toml" \
JWT_HS256_SECRET=$SECRET "$BIN" &
SERVICE=$!
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null 2>&1 && break; sleep 0.1; done

rest() { "$BENCH" --url "$URL" rest --connections 64 --duration 5 --rounds 3 \
  --ceiling-url "http://127.0.0.1:$NOOP_PORT" "$@"; }
echo "### REST publish, no credential"; rest
echo "### REST publish, legacy API_KEY"; rest --header "X-API-Key: bench-legacy-key"
echo "### REST publish, named key"; rest --header "X-API-Key: $KEY"
echo "### REST publish, token"; rest --header "Authorization: Bearer $TOKEN"
echo "### subscribe handshakes, no credential"
"$BENCH" --url "$URL" handshakes --connections 16 --duration 5
echo "### subscribe handshakes, token"
"$BENCH" --url "$URL" handshakes --connections 16 --duration 5 --query "token=$TOKEN"
