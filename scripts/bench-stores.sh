#!/usr/bin/env bash
# Store benchmark: builds the release binaries, starts Swift (scripts/swift.sh), then prints
# upload and download MB/s of a 1 GiB image through glance-api for the file, Swift and S3
# stores, with peak RSS. Arguments go to the bench (--mib 256, --store swift).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/swift.sh start
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/store-bench" "$@"
