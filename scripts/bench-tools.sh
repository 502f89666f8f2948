#!/usr/bin/env bash
# Tools benchmark: builds the release binaries, then prints glance-replicator's livecopy, dump
# and load MB/s and peak RSS for a 64 MiB and a 512 MiB image (memory must not grow with the
# image), and the images per second of one glance-scrubber pass over 1,000 delayed deletes.
# Arguments go to the bench (--mib 1024 --mib 2048, --scrub-images 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/tools-bench" "$@"
