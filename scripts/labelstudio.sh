#!/usr/bin/env bash
# Run a local Label Studio server for loopwright: install | start | stop | status | token | url
#
# Why a script: Label Studio lives in its own venv (its pins clash with Prefect's), must be
# started non-interactively, bound to 127.0.0.1 only, with a token we create, and it silently
# moves to the next port when its port is taken. This script does all of that, idempotently.
#
# Environment:
#   LS_PORT      port on 127.0.0.1 (default 8089)
#   LS_DATA_DIR  server data, token, password, log and pid (default <repo>/.labelstudio)
#   LS_VENV      the server's own venv (default <repo>/.venv-labelstudio)
#   LS_START_TIMEOUT  seconds to wait for /health/ (default 120)
#   LS_TOKEN, LS_PASSWORD  preset admin API token / password, used on the very first start
#                (default: random); e.g. a CI secret. Never printed; stored mode 600.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_VERSION="1.23.2"
LS_PORT="${LS_PORT:-8089}"
LS_DATA_DIR="${LS_DATA_DIR:-$REPO/.labelstudio}"
LS_VENV="${LS_VENV:-$REPO/.venv-labelstudio}"
LS_START_TIMEOUT="${LS_START_TIMEOUT:-120}"
LS_USER="admin@loopwright.local"
URL="http://127.0.0.1:${LS_PORT}"
TOKEN_FILE="$LS_DATA_DIR/token"
PASSWORD_FILE="$LS_DATA_DIR/password"
PID_FILE="$LS_DATA_DIR/server.pid"
LOG_FILE="$LS_DATA_DIR/server.log"

die() { echo "labelstudio.sh: $*" >&2; exit 1; }
say() { echo "labelstudio.sh: $*"; }  # progress on stdout (callers look for "already"); errors on stderr

case "$LS_PORT" in '' | *[!0-9]*) die "LS_PORT=$LS_PORT is not a port number: set LS_PORT=8089 or another free port" ;; esac

healthy() {
  curl -fsS --max-time 3 "$URL/health/" 2>/dev/null | grep -q '"status": *"UP"'
}

# HTTP status of /api/projects with the saved token. curl reads the header from stdin
# (printf is a shell builtin), so the token never shows up in `ps`.
token_status() {
  [ -s "$TOKEN_FILE" ] || { echo 000; return; }
  local code
  code="$(printf 'header = "Authorization: Token %s"\n' "$(cat "$TOKEN_FILE")" |
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -K - "$URL/api/projects/?page_size=1" 2>/dev/null)" || true
  echo "${code:-000}"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$LS_PORT") 2>/dev/null
}

our_pid() {
  [ -s "$PID_FILE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

random_secret() { "$LS_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(20))'; }

# Write a secret file (mode 600) from a preset variable, else a random one. A preset that
# differs from what the server was created with is an error: the server would refuse it.
# Neither value is ever printed.
secret_file() {
  local file="$1" name="$2" preset="$3"
  if [ -n "$preset" ]; then
    case "$preset" in *[!A-Za-z0-9_-]*) die "$name holds characters other than letters, digits, '-' and '_': use e.g. a hex string" ;; esac
    [ "${#preset}" -ge 16 ] || die "$name is shorter than 16 characters: use a longer secret"
  fi
  if [ -s "$file" ]; then
    [ -z "$preset" ] || [ "$preset" = "$(cat "$file")" ] ||
      die "$name differs from the one $LS_DATA_DIR was created with ($file): unset $name, or delete $LS_DATA_DIR to start afresh"
    return
  fi
  if [ -n "$preset" ]; then
    (umask 077 && printf '%s\n' "$preset" >"$file")
  else
    (umask 077 && random_secret >"$file")
  fi
}

cmd_install() {
  if [ -x "$LS_VENV/bin/label-studio" ] &&
    "$LS_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('label-studio') != '$LS_VERSION')" 2>/dev/null; then
    say "label-studio $LS_VERSION already installed in $LS_VENV"
    return
  fi
  local py="${PYTHON:-python3}"
  [ -x "$LS_VENV/bin/python" ] || "$py" -m venv "$LS_VENV" || die "cannot create venv $LS_VENV with $py: set PYTHON to a python>=3.10"
  "$LS_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$LS_VENV/bin/python" -m pip install --quiet "label-studio==$LS_VERSION"
  say "installed label-studio $LS_VERSION in $LS_VENV"
}

# 1.23 turns legacy tokens off by default; --enable-legacy-api-token only applies when the
# organization is first created. If the token is refused, log in as the admin (session +
# CSRF, like a browser) and switch legacy tokens back on for the organization.
enable_legacy_tokens() {
  LS_URL="$URL" LS_USER="$LS_USER" LS_PASSWORD_FILE="$PASSWORD_FILE" "$LS_VENV/bin/python" - <<'PY'
import os, pathlib, sys
import httpx
url, user = os.environ["LS_URL"], os.environ["LS_USER"]
password = pathlib.Path(os.environ["LS_PASSWORD_FILE"]).read_text().strip()
with httpx.Client(base_url=url, timeout=15, follow_redirects=True) as c:
    c.get("/user/login/")
    csrf = c.cookies.get("csrftoken", "")
    r = c.post("/user/login/", data={"email": user, "password": password, "csrfmiddlewaretoken": csrf},
               headers={"Referer": url + "/user/login/"})
    csrf = c.cookies.get("csrftoken", csrf)
    r = c.get("/api/jwt/settings")
    if r.status_code != 200:
        sys.exit(f"cannot log in as {user} to fix token settings (HTTP {r.status_code})")
    settings = r.json()
    settings["legacy_api_tokens_enabled"] = True
    r = c.post("/api/jwt/settings", json=settings, headers={"X-CSRFToken": csrf, "Referer": url + "/"})
    if r.status_code >= 400:
        sys.exit(f"cannot enable legacy API tokens (HTTP {r.status_code})")
PY
}

ensure_token_works() {
  local code
  code="$(token_status)"
  if [ "$code" = 401 ] || [ "$code" = 403 ]; then
    say "token refused ($code): enabling legacy API tokens for the organization"
    enable_legacy_tokens || die "could not enable legacy tokens; delete $LS_DATA_DIR and start again"
    code="$(token_status)"
  fi
  [ "$code" = 200 ] || die "Label Studio at $URL refuses the token in $TOKEN_FILE (HTTP $code): if the server data was created without it, stop and delete $LS_DATA_DIR, then start again"
}

cmd_start() {
  [ -x "$LS_VENV/bin/label-studio" ] || die "no label-studio in $LS_VENV: run scripts/labelstudio.sh install"
  if healthy; then
    if our_pid >/dev/null; then
      ensure_token_works
      say "already running at $URL (pid $(cat "$PID_FILE"))"
      return
    fi
    die "port $LS_PORT answers as a Label Studio that this data dir ($LS_DATA_DIR) did not start: stop it or set LS_PORT to a free port"
  fi
  if port_open; then
    die "port $LS_PORT on 127.0.0.1 is taken by another program (Label Studio would silently move to the next port): free it or set LS_PORT"
  fi
  if pid="$(our_pid)"; then
    die "a server from $PID_FILE (pid $pid) is running but not healthy on $URL: run scripts/labelstudio.sh stop, then start"
  fi

  mkdir -p "$LS_DATA_DIR/data"
  chmod 700 "$LS_DATA_DIR"
  if [ ! -s "$TOKEN_FILE" ]; then
    [ ! -e "$LS_DATA_DIR/label_studio.sqlite3" ] ||
      die "$TOKEN_FILE is missing but $LS_DATA_DIR already has a database made with another token: delete $LS_DATA_DIR to start afresh"
  fi
  secret_file "$TOKEN_FILE" LS_TOKEN "${LS_TOKEN:-}"
  secret_file "$PASSWORD_FILE" LS_PASSWORD "${LS_PASSWORD:-}"
  chmod 600 "$TOKEN_FILE" "$PASSWORD_FILE"

  say "starting Label Studio $LS_VERSION at $URL (log: $LOG_FILE)"
  # Prefixed variables set explicitly; the unprefixed fallbacks Label Studio also reads
  # (USERNAME, PASSWORD, HOST, PORT, USER_TOKEN) are removed from its environment.
  env -u USERNAME -u PASSWORD -u HOST -u PORT -u USER_TOKEN -u LS_TOKEN -u LS_PASSWORD \
    LABEL_STUDIO_USERNAME="$LS_USER" \
    LABEL_STUDIO_PASSWORD="$(cat "$PASSWORD_FILE")" \
    LABEL_STUDIO_USER_TOKEN="$(cat "$TOKEN_FILE")" \
    LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true \
    LABEL_STUDIO_BASE_DATA_DIR="$LS_DATA_DIR" \
    LABEL_STUDIO_LATEST_VERSION_CHECK=false \
    LABEL_STUDIO_HOST="" \
    LABEL_STUDIO_PORT="$LS_PORT" \
    setsid nohup "$LS_VENV/bin/label-studio" start --no-browser \
    --internal-host 127.0.0.1 --port "$LS_PORT" --data-dir "$LS_DATA_DIR/data" \
    --enable-legacy-api-token </dev/null >>"$LOG_FILE" 2>&1 &
  local pid=$!
  echo "$pid" >"$PID_FILE"

  local t0=$SECONDS
  until healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$LOG_FILE" >&2 || true
      die "Label Studio exited during start-up (log above, full log in $LOG_FILE)"
    fi
    if ((SECONDS - t0 > LS_START_TIMEOUT)); then
      tail -n 40 "$LOG_FILE" >&2 || true
      cmd_stop || true
      die "Label Studio not healthy at $URL after ${LS_START_TIMEOUT}s (log above): raise LS_START_TIMEOUT or read $LOG_FILE"
    fi
    sleep 0.5
  done
  ensure_token_works
  say "healthy at $URL after $((SECONDS - t0))s (pid $pid)"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    say "not running (no live pid in $PID_FILE)"
    return
  fi
  # setsid made the server the leader of its own process group: stop the whole group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop after 15 s: sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  if healthy; then
    echo "Label Studio healthy at $URL"
  else
    echo "Label Studio not answering at $URL"
    return 1
  fi
}

cmd_token() {
  [ -s "$TOKEN_FILE" ] || die "no token in $TOKEN_FILE: run scripts/labelstudio.sh start first"
  cat "$TOKEN_FILE"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
token) cmd_token ;;
url) echo "$URL" ;;
*) die "usage: scripts/labelstudio.sh install|start|stop|status|token|url" ;;
esac
