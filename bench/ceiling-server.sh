#!/usr/bin/env bash
# The bench's bare WebSocket broadcaster (the fan-out ceiling), started the
# way bench/ab.sh starts a build of the service (PORT from the environment),
# so that a same-run A/B can put it beside the builds it compares:
#   bench/ab.sh fanout 6 /tmp/before target/release/event-pipeline bench/ceiling-server.sh
exec "$(dirname "$0")/../target/release/event-pipeline-bench" fanout-ceiling --port "${PORT:?PORT is not set}" 2>/dev/null
