"""The one way storage opens DuckDB: in memory, with a memory limit, a thread count and a
private folder to spill to.

Why: DuckDB's default memory limit is 80 % of RAM *per connection*, and its default spill
folder is `.tmp` in the current directory. A drift check or a curation query over a log of
10 M rows then holds gigabytes that the process never gives back, and several processes on
one machine each think they own 80 % of it. With `[storage] memory_limit_mb` a query that
needs more spills to disk instead (slower, bounded). Each connection spills into its own
folder (two processes sharing one clash), which DuckDB removes when the connection closes;
folders of processes that died are removed by the next connection.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import duckdb

from storage.home import StorageError
from storage.settings import StorageSettings

SPILL_FOLDER = "loopwright-duckdb"


def spill_root(settings: StorageSettings) -> Path:
    return Path(settings.spill_dir or tempfile.gettempdir()) / SPILL_FOLDER


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_spill(root: Path) -> int:
    """Remove spill folders (`<pid>-<hex>`) whose process is gone; return how many."""
    removed = 0
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        pid, _, _ = entry.name.partition("-")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def check_settings(settings: StorageSettings) -> None:
    problems = settings.problems()
    if problems:
        raise StorageError(problems[0])


def open_duckdb(settings: StorageSettings | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection under `settings`' memory limit and threads, UTC, no progress
    bar (library code: no bars in flow logs), insertion order not preserved (every query that
    needs an order says ORDER BY; without it DuckDB can stream large scans in less memory)."""
    settings = settings or StorageSettings()
    check_settings(settings)
    root = spill_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    clean_spill(root)
    config = {
        "memory_limit": f"{int(settings.memory_limit_mb)}MB",
        "temp_directory": str(root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"),
        "preserve_insertion_order": False,
    }
    if settings.threads:
        config["threads"] = int(settings.threads)
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con
