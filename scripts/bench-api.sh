#!/usr/bin/env bash
# API benchmark: builds the release binaries, then prints upload and download MB/s of a 1 GiB
# image, the API's and registry's peak RSS, and HEAD / GET /v1/images/detail requests/s.
# Arguments go to the bench (--mib 10240 for 10 GiB, --clients 64).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/api-bench" "$@"
