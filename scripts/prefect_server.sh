#!/usr/bin/env bash
# Start, stop or query a local Prefect server on 127.0.0.1, for the demo and the tests.
#
# Usage: scripts/prefect_server.sh start|stop|status|url
# Env:   PREFECT_PORT (default 4200), PREFECT_SERVER_DIR (default <repo>/.prefect-server),
#        LOOPWRIGHT_VENV (default <repo>/.venv),
#        PREFECT_DB_URL (default: SQLite in PREFECT_SERVER_DIR), e.g. the PostgreSQL of
#        `scripts/postgres.sh url`: postgresql+asyncpg://postgres@127.0.0.1:55432/prefect
# The server's database lives in PREFECT_SERVER_DIR (or PREFECT_DB_URL), so flow runs and
# report-card artifacts stay browsable in the Prefect UI after the demo ends. Several
# workers on one pool want PostgreSQL: SQLite serialises every write (docs/scale-out.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PREFECT_PORT:-4200}"
DIR="${PREFECT_SERVER_DIR:-$REPO/.prefect-server}"
VENV="${LOOPWRIGHT_VENV:-$REPO/.venv}"
URL="http://127.0.0.1:$PORT"
PIDFILE="$DIR/server-$PORT.pid"
LOG="$DIR/server-$PORT.log"
DB_URL="${PREFECT_DB_URL:-}"

healthy() {
  curl -fsS --max-time 2 "$URL/api/health" >/dev/null 2>&1
}

port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start() {
  if healthy; then
    echo "prefect server already up at $URL"
    return 0
  fi
  if port_taken; then
    echo "port $PORT is taken by another program: set PREFECT_PORT to a free port" >&2
    exit 1
  fi
  mkdir -p "$DIR"
  local db="sqlite in $DIR"
  if [[ -n "$DB_URL" ]]; then
    case "$DB_URL" in
      postgresql+asyncpg://*) db="postgresql" ;;  # the URL may hold a password: not printed
      *) echo "PREFECT_DB_URL must start with postgresql+asyncpg:// (see scripts/postgres.sh url)" >&2; exit 1 ;;
    esac
    export PREFECT_API_DATABASE_CONNECTION_URL="$DB_URL"
  fi
  echo "starting prefect server at $URL on $db (log: $LOG)"
  PREFECT_HOME="$DIR" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_API_URL= \
  PREFECT_UI_API_URL="$URL/api" \
    setsid nohup "$VENV/bin/prefect" server start --host 127.0.0.1 --port "$PORT" \
    >"$LOG" 2>&1 < /dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    if healthy; then
      echo "prefect server up at $URL"
      return 0
    fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "prefect server exited during start; last log lines:" >&2
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    sleep 1
  done
  echo "prefect server did not become healthy in 120 s; last log lines:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
}

stop() {
  if [[ -f "$PIDFILE" ]]; then
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    echo "prefect server on port $PORT stopped"
  else
    echo "no prefect server started by this script on port $PORT"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if healthy; then echo "up $URL"; else echo "down $URL"; exit 1; fi ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
