#!/usr/bin/env bash
# An S3-compatible server on 127.0.0.1 for the logs on object storage: start | stop | status | url
#
# Why moto: no MinIO server installs from the registries here (../shared/FIELD-NOTES.md);
# `moto_server` (moto[server], a dev dependency) speaks the S3 API, conditional writes
# included, and keeps objects in memory: a throwaway stand-in for tests and demos, not a
# store. Real deployments point `[storage] endpoint_url` at S3, MinIO, Ceph ... instead
# (docs/scale-out.md). `start` also creates the bucket.
#
# Environment:
#   S3_PORT     port on 127.0.0.1 (default 55900)
#   S3_BUCKET   bucket created at start (default loopwright)
#   S3_DIR      pid file and log (default <repo>/.s3)
# moto accepts any credentials; clients still need some: AWS_ACCESS_KEY_ID=test
# AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3_PORT="${S3_PORT:-55900}"
S3_BUCKET="${S3_BUCKET:-loopwright}"
S3_DIR="${S3_DIR:-$REPO/.s3}"
PY="${PY:-$REPO/.venv/bin/python}"
PID="$S3_DIR/moto.pid"
LOG="$S3_DIR/moto.log"
URL="http://127.0.0.1:$S3_PORT"

die() { echo "s3.sh: $*" >&2; exit 1; }
say() { echo "s3.sh: $*"; }

case "$S3_PORT" in '' | *[!0-9]*) die "S3_PORT=$S3_PORT is not a port number: set S3_PORT=55900 or another free port" ;; esac

ours_running() { [[ -f "$PID" ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; }

start() {
  if ours_running; then say "already up on $URL"; return 0; fi
  port_taken && die "port $S3_PORT is taken by another program: set S3_PORT to a free port"
  [[ -x "$REPO/.venv/bin/moto_server" ]] || die "no moto_server in .venv: run 'make setup'"
  mkdir -p "$S3_DIR"
  nohup "$REPO/.venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$LOG" 2>&1 &
  echo $! >"$PID"
  for _ in $(seq 1 100); do
    port_taken && break
    ours_running || { tail -n 20 "$LOG" >&2; die "moto_server exited (log: $LOG)"; }
    sleep 0.1
  done
  port_taken || die "moto_server did not listen on $URL within 10 s (log: $LOG)"
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" \
    AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$PY" - "$URL" "$S3_BUCKET" <<'PYEOF'
import sys
import boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
if sys.argv[2] not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
    s3.create_bucket(Bucket=sys.argv[2])
PYEOF
  say "up on $URL (bucket $S3_BUCKET, log $LOG)"
}

stop() {
  if ours_running; then
    kill "$(cat "$PID")"
    for _ in $(seq 1 50); do ours_running || break; sleep 0.1; done
    ours_running && kill -9 "$(cat "$PID")"
    rm -f "$PID"
    say "stopped (port $S3_PORT)"
  else
    rm -f "$PID"
    say "no server of ours running ($S3_DIR)"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if ours_running && port_taken; then echo "up $URL"; else echo "down $URL"; exit 1; fi ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
