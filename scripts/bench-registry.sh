#!/usr/bin/env bash
# Registry benchmark: builds the release binaries, then prints requests/s and latency for
# GET /images/detail?limit=25 and GET /images/{id} with 10,000 images, on SQLite and PostgreSQL
# by default. Arguments go to the bench (--engine mysql --images 100000 --seconds 10 --clients 64).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/registry-bench" "$@"
