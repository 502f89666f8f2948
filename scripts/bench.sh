#!/usr/bin/env bash
# The benchmark kit: measures this machine's limits (disk, loopback, hashing) and glance-rs on the
# embedded default in one run, prints a table and writes bench-results.json.
#   scripts/bench.sh --quick     # about a minute
#   scripts/bench.sh             # full sizes: 1 GiB image, 10,000 / 100,000 images (several minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
# wrk measures request rates with far less CPU than an in-process client (optional).
if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  ($SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null 2>&1) \
    || echo "bench: wrk not installed; request rates use the built-in client"
fi
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/bench" "$@"
