#!/usr/bin/env bash
# A real single-node OpenStack Swift on 127.0.0.1, with tempauth and the S3 API (s3api), for the
# Swift and S3 store tests and benchmarks. Swift comes from PyPI into a virtualenv (it has the
# more complete S3 API); memcached, which tempauth keeps its tokens in, from Debian.
#
#   scripts/swift.sh start   install if missing, start what is not running, wait until it answers
#   scripts/swift.sh stop    stop what this script started
#   scripts/swift.sh env     print the endpoints and credentials as shell assignments
#
# Accounts (tempauth): test:tester / testing (admin of account AUTH_test). The S3 API on the same
# port takes access key test:tester, secret testing, region us-east-1, path-style buckets.
# Settings: SWIFT_PORT (default 19280; the servers use +1..+4), SWIFT_DATA (default
# /var/tmp/glance-swift), SWIFT_PIP_SPEC (default swift==2.38.3).
set -euo pipefail
export PYTHONWARNINGS=ignore

PORT="${SWIFT_PORT:-19280}"
DATA="${SWIFT_DATA:-/var/tmp/glance-swift}"
SPEC="${SWIFT_PIP_SPEC:-swift==2.38.3 keystonemiddleware==13.0.1}"
# Keystone accounts (KEY_<project id>) beside tempauth's (AUTH_test), validated against the
# project's Keystone (scripts/keystone.sh) when it runs.
KEYSTONE_URL="${KEYSTONE_URL:-http://127.0.0.1:15357}"
VENV="$DATA/venv"
ETC="$DATA/etc"
RUN="$DATA/run"
LOGS="$DATA/log"
DEVICES="$DATA/srv"
declare -A PORTS=([proxy]=$PORT [object]=$((PORT + 1)) [container]=$((PORT + 2)) [account]=$((PORT + 3)))
MEMCACHED_PORT=$((PORT + 4))

log() { printf '[swift.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install() {
  if ! command -v memcached >/dev/null; then
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    log "installing memcached"
    # Never let the package start a system-wide memcached on 11211.
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod +x /usr/sbin/policy-rc.d
      policy=1
    fi
    $sudo apt-get install -y -qq memcached >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq memcached >/dev/null; }
    [ -n "$policy" ] && $sudo rm -f /usr/sbin/policy-rc.d
  fi
  if [ ! -x "$VENV/bin/swift-proxy-server" ] || ! "$VENV/bin/python" -c 'import keystonemiddleware' 2>/dev/null; then
    log "installing $SPEC into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check $SPEC || die "pip install failed"
  fi
}

configure() {
  mkdir -p "$ETC" "$RUN" "$LOGS" "$DEVICES/d1"
  # Bump when the generated configuration changes: running servers are restarted with the new one.
  local stamp="$ETC/ready.$PORT.v3"
  [ -f "$stamp" ] && return 0
  stop
  log "writing configuration and rings in $ETC"
  local user; user="$(id -un)"
  printf '[swift-hash]\nswift_hash_path_prefix = glance-rs\nswift_hash_path_suffix = glance-rs\n\n[storage-policy:0]\nname = default\ndefault = yes\n' >"$ETC/swift.conf"
  local server
  for server in account container object; do
    cat >"$ETC/$server-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${PORTS[$server]}
user = $user
swift_dir = $ETC
devices = $DEVICES
mount_check = false
workers = 0
log_name = $server-server
log_address = $RUN/no-syslog

[pipeline:main]
pipeline = healthcheck $server-server

[app:$server-server]
use = egg:swift#$server

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  cat >"$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
user = $user
swift_dir = $ETC
workers = 0
log_name = proxy-server
log_address = $RUN/no-syslog

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api authtoken keystoneauth tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin .reseller_admin

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = glance
password = glance-secret
project_name = service
user_domain_id = default
project_domain_id = default
cache = swift.cache

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = KEY_
operator_roles = admin, member

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:dlo]
use = egg:swift#dlo
EOF
  # One device, one replica, 64 partitions per ring, built in one Python process.
  "$VENV/bin/python" - "$ETC" "${PORTS[object]}" "${PORTS[container]}" "${PORTS[account]}" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(("object", "container", "account"), map(int, sys.argv[2:5])):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "device": "d1", "weight": 1.0})
    builder.rebalance()
    builder.get_ring().save(f"{etc}/{name}.ring.gz")
EOF
  touch "$stamp"
}

# A pid counts as ours while its command line still names our config (pids get reused).
running() {
  local pid
  pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

spawn() {
  local name=$1 marker=$2; shift 2
  running "$name" "$marker" && return 0
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}

answering() { curl -fsS -m 2 "http://127.0.0.1:$1/healthcheck" >/dev/null 2>&1; }

serve() {
  spawn memcached "-p $MEMCACHED_PORT" memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -u "$(id -un)"
  local server
  for server in account container object proxy; do
    spawn "$server" "$ETC/$server-server.conf" "$VENV/bin/swift-$server-server" "$ETC/$server-server.conf" -v
  done
  for _ in $(seq 1 180); do
    if answering "$PORT" && answering "${PORTS[object]}" && answering "${PORTS[container]}" && answering "${PORTS[account]}" &&
      curl -fsS -m 2 -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "http://127.0.0.1:$PORT/auth/v1.0"; then
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 "$LOGS"/*.log >&2 || true
  die "Swift did not answer on 127.0.0.1:$PORT"
}

stop() {
  local name pid stopped=()
  for name in proxy object container account memcached; do
    pid="$(cat "$RUN/$name.pid" 2>/dev/null)" || continue
    if [ -d "/proc/$pid" ]; then kill "$pid" 2>/dev/null && stopped+=("$pid") && log "stopped $name ($pid)"; fi
    rm -f "$RUN/$name.pid"
  done
  # Wait until they are gone: a restart must find their ports free.
  for pid in "${stopped[@]}"; do
    for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  done
}

case "${1:-}" in
  start)
    mkdir -p "$DATA"
    exec 9>"$DATA/.lock"
    flock 9
    install
    configure
    serve
    ;;
  stop) stop ;;
  env)
    echo "SWIFT_AUTH_URL=http://127.0.0.1:$PORT/auth/v1.0"
    echo "SWIFT_USER=test:tester"
    echo "SWIFT_KEY=testing"
    echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
    echo "S3_ACCESS_KEY=test:tester"
    echo "S3_SECRET_KEY=testing"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
