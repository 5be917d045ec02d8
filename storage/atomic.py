"""Small-file writes that a reader sees whole or not at all (temp name, fsync, rename)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def fsync_dir(folder: Path) -> None:
    """Persist a rename: without it a crash can forget the new directory entry."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open directories; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically: readers see the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def to_json(value: Mapping[str, Any], what: str, indent: int | None = 1) -> bytes:
    """Serialize with stable key order (one line when `indent` is None); the error names
    what could not be stored."""
    try:
        return (json.dumps(value, indent=indent, sort_keys=True, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} is not JSON-serializable ({err}): pass plain str/int/float/bool/list/dict values"
        ) from err


def write_json_atomic(path: Path, value: Mapping[str, Any], what: str = "value") -> Path:
    return write_bytes_atomic(path, to_json(value, what))
