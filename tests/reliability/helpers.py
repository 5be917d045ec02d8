"""Shared helpers of the reliability tests: child processes, fingerprints of a data home."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")


def spawn(command: str, *args: object, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A worker of tests/reliability/workers.py, its stdout a pipe of lines."""
    return subprocess.Popen(
        [PYTHON, "-m", "tests.reliability.workers", command, *map(str, args)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen, timeout: float = 60) -> None:
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise RuntimeError(f"worker did not start (said {line!r}, exit {proc.poll()})")


def overlapping_writers(
    root: Path, go: Path, span: int, rows: int, env: dict[str, str] | None = None
) -> set[str]:
    """Run 4 `write` workers at once (released together by `go`), each logging `span` ids in
    appends of `rows`, each range overlapping its neighbour's by half; assert each wrote all
    of its ids, and return every id written."""
    ranges = [(k * span // 2, k * span // 2 + span) for k in range(4)]
    procs = [
        spawn("write", root, lo, hi, rows, f"v000{k + 1}", go, env=env)
        for k, (lo, hi) in enumerate(ranges)
    ]
    for p in procs:
        wait_ready(p)
    go.touch()
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == f"DONE {span}"
    return {f"r-{k:07d}" for lo, hi in ranges for k in range(lo, hi)}


def fingerprint(root: Path) -> dict[str, str]:
    """Every file and folder under `root`: relative path -> sha256 (or 'dir')."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def squash(text: str) -> str:
    """Rich wraps long lines: compare messages with whitespace collapsed."""
    return " ".join(text.split())
