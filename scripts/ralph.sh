#!/usr/bin/env bash
# Installs Ralph (ralph-malph, the xAPI Learning Record Store from PyPI)
# into a virtualenv under ~/.cache, for the xAPI connector's tests, which
# start it themselves (conformance/src/lrs.rs, scripts/ralph_lrs.py).
# Idempotent: an existing install is kept. Ralph 5.1.0's `lrs` extra misses
# `requests`, which is installed beside it.
#
# Usage: scripts/ralph.sh        (EP_RALPH_VENV names another virtualenv)
set -euo pipefail

VERSION=5.1.0
VENV=${EP_RALPH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/event-pipeline/ralph-$VERSION}

if "$VENV/bin/pip" show --quiet ralph-malph >/dev/null 2>&1 && "$VENV/bin/python" -c "import uvicorn, requests" 2>/dev/null; then
  exit 0
fi
echo "== installing Ralph $VERSION (xAPI LRS, for the connector's tests) into $VENV" >&2
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "ralph-malph[cli,lrs]==$VERSION" requests
