#!/usr/bin/env bash
# A real Keystone (identity v3) on 127.0.0.1 for the keystone-flavor tests and for trying the
# keystone pipeline by hand. Installed from PyPI into a virtualenv, run by gunicorn on SQLite.
#
#   scripts/keystone.sh start   install if missing, set up once, start (idempotent), wait until it answers
#   scripts/keystone.sh stop    stop the server this script started
#   scripts/keystone.sh env     print the endpoint and the test accounts as shell assignments
#
# Accounts (domain Default), created at set-up:
#   admin / admin-secret     role admin on project admin
#   glance / glance-secret   roles admin and ResellerAdmin (Swift) on project service (the
#                            glance-rs service user)
#   alice / alice-secret     role member on project alpha
#   bob / bob-secret         role member on project beta
#   carol / carol-secret     role reader on project alpha
# Settings: KEYSTONE_PORT (default 15357), KEYSTONE_DATA (default /var/tmp/glance-keystone),
# KEYSTONE_PIP_SPEC (default "keystone==30.0.0 gunicorn==27.0.1").
set -euo pipefail
export PYTHONWARNINGS=ignore  # eventlet deprecation notices on every keystone-manage call

PORT="${KEYSTONE_PORT:-15357}"
DATA="${KEYSTONE_DATA:-/var/tmp/glance-keystone}"
SPEC="${KEYSTONE_PIP_SPEC:-keystone==30.0.0 gunicorn==27.0.1}"
VENV="$DATA/venv"
CONF="$DATA/keystone.conf"
PIDFILE="$DATA/gunicorn.pid"
URL="http://127.0.0.1:$PORT"
SWIFT_PORT="${SWIFT_PORT:-19280}"

log() { printf '[keystone.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

answering() { curl -fsS -m 2 "$URL/v3" >/dev/null 2>&1; }

install() {
  [ -x "$VENV/bin/keystone-manage" ] && [ -x "$VENV/bin/gunicorn" ] && return 0
  log "installing $SPEC into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check $SPEC || die "pip install failed"
}

configure() {
  [ -f "$DATA/.ready" ] && return 0
  log "setting up $DATA"
  rm -rf "$DATA/keystone.db" "$DATA/fernet-keys" "$DATA/credential-keys"
  mkdir -p "$DATA/fernet-keys" "$DATA/credential-keys"
  cat >"$CONF" <<EOF
[DEFAULT]
log_file = $DATA/keystone.log
[database]
connection = sqlite:///$DATA/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $DATA/fernet-keys
[credential]
key_repository = $DATA/credential-keys
[identity]
password_hash_rounds = 4
EOF
  local manage=("$VENV/bin/keystone-manage" --config-file "$CONF")
  local me; me="$(id -un)"; local group; group="$(id -gn)"
  "${manage[@]}" db_sync
  "${manage[@]}" fernet_setup --keystone-user "$me" --keystone-group "$group"
  "${manage[@]}" credential_setup --keystone-user "$me" --keystone-group "$group"
  "${manage[@]}" bootstrap --bootstrap-password admin-secret --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-admin-url "$URL/v3" --bootstrap-public-url "$URL/v3" \
    --bootstrap-internal-url "$URL/v3"
}

serve() {
  answering && return 0
  log "starting on $URL"
  # Keystone parses sys.argv as its own command line: hand it a clean one.
  printf '%s\n' 'import sys' 'sys.argv = sys.argv[:1]' 'from keystone.server import wsgi' \
    'application = wsgi.initialize_public_application()' >"$DATA/keystone_app.py"
  OS_KEYSTONE_CONFIG_FILES="$CONF" PYTHONWARNINGS=ignore "$VENV/bin/gunicorn" --daemon --pid "$PIDFILE" \
    --workers 2 --chdir "$DATA" --bind "127.0.0.1:$PORT" --error-logfile "$DATA/gunicorn.log" \
    --control-socket "$DATA/gunicorn.ctl" keystone_app:application </dev/null >/dev/null 2>&1 9>&-
  for _ in $(seq 1 120); do
    answering && return 0
    sleep 0.5
  done
  tail -20 "$DATA/gunicorn.log" "$DATA/keystone.log" >&2 || true
  die "Keystone did not answer on $URL"
}

# A few lines of Python for Keystone's API, shared by the provisioning steps below.
write_ksapi() {
  cat >"$DATA/ksapi.py" <<PY
import json, urllib.request

URL = "$URL/v3"

def call(method, path, body=None, token=None):
    req = urllib.request.Request(URL + path, method=method, data=json.dumps(body).encode() if body else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(req) as res:
        return res.headers, json.loads(res.read() or b"{}")

def admin_token():
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "admin-secret", "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    return call("POST", "/auth/tokens", auth)[0]["X-Subject-Token"]
PY
}

# Projects, users and role assignments, through Keystone's own API (once).
provision() {
  [ -f "$DATA/.ready" ] && return 0
  log "creating the test projects and users"
  KS_DATA="$DATA" "$VENV/bin/python" - <<'EOF'
import os, sys
sys.path.insert(0, os.environ["KS_DATA"])
from ksapi import call, admin_token
token = admin_token()
roles = {r["name"]: r["id"] for r in call("GET", "/roles", token=token)[1]["roles"]}
for role in ("member", "reader"):
    if role not in roles:
        roles[role] = call("POST", "/roles", {"role": {"name": role}}, token)[1]["role"]["id"]
projects = {}
for name in ("service", "alpha", "beta"):
    projects[name] = call("POST", "/projects", {"project": {"name": name, "domain_id": "default"}}, token)[1]["project"]["id"]
for user, project, role in (("glance", "service", "admin"), ("alice", "alpha", "member"),
                            ("bob", "beta", "member"), ("carol", "alpha", "reader")):
    uid = call("POST", "/users", {"user": {"name": user, "password": user + "-secret", "domain_id": "default"}}, token)[1]["user"]["id"]
    call("PUT", f"/projects/{projects[project]}/users/{uid}/roles/{roles[role]}", token=token)
EOF
  touch "$DATA/.ready"
}

# Swift (scripts/swift.sh) in the catalog, as the object-store service: Keystone-authenticated
# accounts are KEY_<project id> on it (once; a step of its own, so older set-ups get it too).
provision_swift() {
  [ -f "$DATA/.ready-swift" ] && return 0
  log "registering Swift (127.0.0.1:$SWIFT_PORT) as the object-store service"
  KS_DATA="$DATA" SWIFT_URL="http://127.0.0.1:$SWIFT_PORT/v1/KEY_\$(project_id)s" "$VENV/bin/python" - <<'EOF'
import os, sys
sys.path.insert(0, os.environ["KS_DATA"])
from ksapi import call, admin_token
token = admin_token()
service = call("POST", "/services", {"service": {"name": "swift", "type": "object-store"}}, token)[1]["service"]["id"]
for interface in ("public", "internal", "admin"):
    call("POST", "/endpoints", {"endpoint": {"service_id": service, "interface": interface,
         "region_id": "RegionOne", "url": os.environ["SWIFT_URL"]}}, token)
EOF
  touch "$DATA/.ready-swift"
}

# The glance service user is a reseller admin of Swift (keystoneauth's ResellerAdmin role), as a
# multi-tenant Glance's must be: its scrubber and admins reach images in every project's account
# (once; a step of its own, so older set-ups get it too).
provision_reseller() {
  [ -f "$DATA/.ready-reseller" ] && return 0
  log "giving the glance service user Swift's ResellerAdmin role"
  KS_DATA="$DATA" "$VENV/bin/python" - <<'EOF'
import os, sys
sys.path.insert(0, os.environ["KS_DATA"])
from ksapi import call, admin_token
token = admin_token()
roles = {r["name"]: r["id"] for r in call("GET", "/roles", token=token)[1]["roles"]}
if "ResellerAdmin" not in roles:
    roles["ResellerAdmin"] = call("POST", "/roles", {"role": {"name": "ResellerAdmin"}}, token)[1]["role"]["id"]
project = call("GET", "/projects?name=service", token=token)[1]["projects"][0]["id"]
user = call("GET", "/users?name=glance", token=token)[1]["users"][0]["id"]
call("PUT", f"/projects/{project}/users/{user}/roles/{roles['ResellerAdmin']}", token=token)
EOF
  touch "$DATA/.ready-reseller"
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid; pid="$(cat "$PIDFILE")"
    if grep -q gunicorn "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" && log "stopped ($pid)"
    fi
    rm -f "$PIDFILE"
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$DATA"
    # One start at a time: test processes may all ask at once.
    exec 9>"$DATA/.lock"
    flock 9
    install
    configure
    serve
    write_ksapi
    provision
    provision_swift
    provision_reseller
    ;;
  stop) stop ;;
  env)
    echo "KEYSTONE_URL=$URL"
    echo "KEYSTONE_ADMIN=admin:admin-secret:admin"
    echo "KEYSTONE_SERVICE=glance:glance-secret:service"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
