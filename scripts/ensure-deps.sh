#!/usr/bin/env bash
# Installs what building and testing glance-rs needs on a fresh Debian machine, and starts the
# PostgreSQL and MariaDB servers the tests use when they are installed but not running.
# Safe to run again: it only acts on what is missing.
set -euo pipefail

need_apt=()
pkg-config --exists libmariadb 2>/dev/null || need_apt+=(libmariadb-dev)
pkg-config --exists libpq 2>/dev/null || need_apt+=(libpq-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "ensure-deps: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! listening 5432 && command -v pg_ctlcluster >/dev/null; then
  echo "ensure-deps: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! listening 3306 && [ -x /usr/sbin/mariadbd ]; then
  echo "ensure-deps: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
for _ in $(seq 1 30); do
  listening 5432 && listening 3306 && break
  sleep 1
done
