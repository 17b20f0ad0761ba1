#!/usr/bin/env bash
# Everything the test suite needs beside Rust, each installed or built only
# when missing: the container images of PostgreSQL, NATS and Redis (and the
# Docker engine), Ralph (an xAPI LRS, from PyPI), and Debian's Chromium
# with playwright-core (the browser test). README's test command and .ci/run
# run it before `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-images.sh
scripts/ralph.sh
scripts/browser.sh
