#!/usr/bin/env bash
# The test command: builds every target once, then runs the whole suite (unit tests, and the
# end-to-end tests that spawn the real binaries on SQLite, PostgreSQL and MariaDB).
# PostgreSQL/MariaDB tests skip with a loud message when the server is unreachable, unless
# GLANCE_TEST_REQUIRE_SERVICES=1 (set by CI), which turns that into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
