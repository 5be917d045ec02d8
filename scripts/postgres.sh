#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the Prefect server: start | stop | status | url
#
# Why a script: a Prefect server shared by several workers wants PostgreSQL, not SQLite
# (docs/scale-out.md). This starts Debian's PostgreSQL binaries on a cluster of our own (own
# port, own data dir; the system's cluster is never touched), creates the `prefect`
# database, and prints the asyncpg URL that `scripts/prefect_server.sh` takes as
# PREFECT_DB_URL. initdb refuses root, so as root the cluster runs as the `postgres` user.
#
# Environment:
#   PG_PORT      port on 127.0.0.1 (default 55432)
#   PG_DATA_DIR  the cluster (data, socket, log); default <repo>/.postgres. As root its
#                parent folders must be traversable by the `postgres` user (e.g. under /tmp)
#   PG_BIN       PostgreSQL's bin dir (default: the newest /usr/lib/postgresql/*/bin)
#   PG_DB        database created for Prefect (default prefect)
# Authentication is `trust` on 127.0.0.1 only: a local, throwaway cluster. A shared one
# (managed PostgreSQL) takes a password in the URL instead: see docs/scale-out.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_PORT="${PG_PORT:-55432}"
PG_DATA_DIR="${PG_DATA_DIR:-$REPO/.postgres}"
PG_DB="${PG_DB:-prefect}"
LOG="$PG_DATA_DIR/server.log"

die() { echo "postgres.sh: $*" >&2; exit 1; }
say() { echo "postgres.sh: $*"; }

case "$PG_PORT" in '' | *[!0-9]*) die "PG_PORT=$PG_PORT is not a port number: set PG_PORT=55432 or another free port" ;; esac

find_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/pg_ctl" ]] || die "PG_BIN=$PG_BIN has no pg_ctl: point it at PostgreSQL's bin dir"
    echo "$PG_BIN"
    return
  fi
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$found" && -x "$found/pg_ctl" ]] \
    || die "no PostgreSQL found under /usr/lib/postgresql: run 'make setup-system' (apt-get install -y postgresql) or set PG_BIN"
  echo "$found"
}

# Run a PostgreSQL binary as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    local cmd
    printf -v cmd '%q ' "$@"
    su postgres -s /bin/bash -c "$cmd"
  else
    "$@"
  fi
}

ready() {
  local bin
  bin="$(find_bin)"
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d "$PG_DB" -U postgres 2>/dev/null
}

port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null
}

ours_running() {
  [[ -f "$PG_DATA_DIR/postmaster.pid" ]] && as_owner "$(find_bin)/pg_ctl" -D "$PG_DATA_DIR" status >/dev/null 2>&1
}

init_cluster() {
  local bin="$1"
  mkdir -p "$PG_DATA_DIR"
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$PG_DATA_DIR"
    su postgres -s /bin/bash -c "test -w $(printf %q "$PG_DATA_DIR")" \
      || die "the postgres user cannot write $PG_DATA_DIR (a parent folder is closed to it, e.g. mode 700): chmod o+x the parents or set PG_DATA_DIR to a folder under /tmp"
  fi
  chmod 700 "$PG_DATA_DIR"
  say "initdb $PG_DATA_DIR"
  local out
  out="$(as_owner "$bin/initdb" -D "$PG_DATA_DIR" -U postgres --auth=trust -E UTF8 \
    --no-instructions 2>&1)" || { echo "$out" >&2; die "initdb failed"; }
}

start() {
  local bin
  bin="$(find_bin)"
  if ours_running && ready; then
    say "already up on 127.0.0.1:$PG_PORT"
    return 0
  fi
  if port_taken; then
    die "port $PG_PORT is taken by another program: set PG_PORT to a free port"
  fi
  [[ -f "$PG_DATA_DIR/PG_VERSION" ]] || init_cluster "$bin"
  # the socket lives in the data dir: no write to /var/run/postgresql, no clash with others
  as_owner "$bin/pg_ctl" -D "$PG_DATA_DIR" -l "$LOG" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DATA_DIR -c listen_addresses=127.0.0.1" start >/dev/null \
    || { tail -n 20 "$LOG" >&2 || true; die "pg_ctl start failed (log: $LOG)"; }
  if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB"
  fi
  say "up on 127.0.0.1:$PG_PORT (database $PG_DB, log $LOG)"
}

stop() {
  if ours_running; then
    as_owner "$(find_bin)/pg_ctl" -D "$PG_DATA_DIR" -m fast -w -t 60 stop >/dev/null
    say "stopped (port $PG_PORT)"
  else
    say "no cluster of ours running in $PG_DATA_DIR"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if ours_running && ready; then echo "up 127.0.0.1:$PG_PORT"; else echo "down 127.0.0.1:$PG_PORT"; exit 1; fi ;;
  url) echo "postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/$PG_DB" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
