"""Small state the flows keep between runs: JSON documents (the last drift verdict, the Label
Studio project id) and JSONL event logs (every trigger, every gate decision)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.atomic import to_json, write_json_atomic
from storage.home import DataHome, StorageError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _path(home: DataHome, name: str, suffix: str) -> Path:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StorageError(
            f"state name {name!r} is not a plain name: use letters, digits, '.', '-' or '_'"
        )
    return home.state / f"{name}{suffix}"


def read_state(home: DataHome, name: str) -> dict | None:
    """The state document `name`, or None when it was never written."""
    try:
        return json.loads(_path(home, name, ".json").read_text())
    except FileNotFoundError:
        return None


def write_state(home: DataHome, name: str, value: dict) -> None:
    """Replace the state document atomically (a crash leaves the old or the new one)."""
    write_json_atomic(_path(home, name, ".json"), value, f"state {name!r}")


def append_event(home: DataHome, name: str, value: dict) -> dict:
    """Append one event (with a UTC `ts` unless given) to `state/<name>.jsonl`; return it.

    One `write` on an O_APPEND file: concurrent appenders never interleave inside a line.
    """
    path = _path(home, name, ".jsonl")
    event = {"ts": datetime.now(UTC).isoformat(timespec="microseconds"), **value}
    line = to_json(event, f"event {name!r}", indent=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return event


def read_events(home: DataHome, name: str, last: int | None = None) -> list[dict[str, Any]]:
    """Events oldest first (only the `last` n when given). A torn final line from a crashed
    writer is skipped, not fatal."""
    if last is not None and last < 0:
        raise StorageError(f"last is {last}: pass a non-negative number or None")
    try:
        text = _path(home, name, ".jsonl").read_text()
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if last is None:
        return events
    return events[-last:] if last else []
