#!/usr/bin/env bash
# Builds glance-rs and starts it on the embedded default: glance-registry on SQLite and
# glance-api (unauthenticated admin context), with everything under ./data. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null 2>&1 || true
cargo build --release --locked --bins
bin="${CARGO_TARGET_DIR:-target}/release"
data="$PWD/data"
mkdir -p "$data/images" "$data/etc"
api_port="${GLANCE_API_PORT:-9292}"
registry_port="${GLANCE_REGISTRY_PORT:-9191}"
cat > "$data/etc/glance-registry.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $registry_port
sql_connection = sqlite:///$data/glance.sqlite
verbose = True
log_file = $data/registry.log
[paste_deploy]
flavor =
CONF
cat > "$data/etc/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $api_port
registry_host = 127.0.0.1
registry_port = $registry_port
default_store = file
filesystem_store_datadir = $data/images
verbose = True
log_file = $data/api.log
[paste_deploy]
flavor =
CONF
"$bin/glance-manage" --config-file "$data/etc/glance-registry.conf" db_sync
"$bin/glance-registry" --config-file "$data/etc/glance-registry.conf" & registry=$!
"$bin/glance-api" --config-file "$data/etc/glance-api.conf" & api=$!
trap 'kill -TERM $api $registry 2>/dev/null; wait' INT TERM EXIT
echo "glance-rs: API at http://127.0.0.1:$api_port  registry at http://127.0.0.1:$registry_port  (logs in $data; Ctrl-C stops)"
wait -n $api $registry
