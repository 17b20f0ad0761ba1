#!/usr/bin/env bash
# Installs what tests/browser.rs drives: Debian's Chromium (chromium and
# chromium-driver, when missing; as root, with apt-get) and playwright-core
# (pinned in tests/browser/package.json) into tests/browser/node_modules.
# No browser is downloaded: the driver uses /usr/bin/chromium. Idempotent.
#
# Usage: scripts/browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "browser: no /usr/bin/chromium; install Debian's chromium and chromium-driver" >&2
    exit 1
  fi
  echo "== installing Debian's Chromium (for the browser tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== installing playwright-core into tests/browser/node_modules" >&2
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi
