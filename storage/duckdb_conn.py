"""The one way storage opens DuckDB: in memory, with a memory limit, a thread count and a
private folder to spill to.

Why: DuckDB's default memory limit is 80 % of RAM *per connection*, and its default spill
folder is `.tmp` in the current directory. A drift check or a curation query over a log of
10 M rows then holds gigabytes that the process never gives back, and several processes on
one machine each think they own 80 % of it. With `[storage] memory_limit_mb` a query that
needs more spills to disk instead (slower, bounded). Each connection spills into its own
folder (two processes sharing one clash), which DuckDB removes when the connection closes;
folders of processes that died are removed by the next connection.

`SharedDuckDB`: opening a database costs ~40 ms of CPU, a connection to an open one ~0.6 ms,
and a loop asks ~13 questions per batch, so a reader (`storage.queries.Queries`) keeps one
database and gives each question its own short connection (`cursor()`: its own temp views
and tables, closed after the question; the memory limit, threads and spill folder are the
database's). `read_parts`: how a listing of Parquet parts is read.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

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


@lru_cache(maxsize=65_536)
def _part_schema(path: str, mtime_ns: int, size: int) -> pa.Schema:
    """A part's Arrow schema, read once per file version (parts never change once written)."""
    return pq.read_schema(path).remove_metadata()


def same_schema(files: Sequence[str]) -> bool:
    """Whether every part has exactly one schema (names, order, types): DuckDB then reads them
    without `union_by_name`, which costs ~5 ms of footer reading per mention of the log in a
    query and answers the same when no part differs. A part that vanished: False (the query
    itself finds out, and runs again on a fresh listing)."""
    first = None
    for f in files:
        try:
            st = os.stat(f)
            schema = _part_schema(f, st.st_mtime_ns, st.st_size)
        except (OSError, pa.ArrowException):
            return False
        if first is None:
            first = schema
        elif not schema.equals(first):
            return False
    return True


def read_parts(files: Sequence[str]) -> str:
    """The `read_parquet(...)` of a listing: hive partitions, file name and row number, and
    columns by name across parts written with different schemas (older parts lack newer
    columns, read as NULL)."""
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    by_name = "false" if same_schema(files) else "true"
    return (
        f"read_parquet({listed}, hive_partitioning=true, union_by_name={by_name}, "
        "filename=true, file_row_number=true)"
    )


class SharedDuckDB:
    """One in-memory database under `settings`, opened on first use; `connect()` gives a
    new connection to it (temp objects of its own; close it after use). Per process: after
    a fork the child opens its own (a database is never used across processes)."""

    def __init__(self, settings: StorageSettings | None = None) -> None:
        self.settings = settings or StorageSettings()
        self._root: duckdb.DuckDBPyConnection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def connect(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._root is None or self._pid != os.getpid():
                if self._root is not None:  # the parent's, inherited by fork: not ours to close
                    _INHERITED.append(self._root)
                self._root = open_duckdb(self.settings)
                self._pid = os.getpid()
                _close_at_exit(self)
            con = self._root.cursor()
        try:
            con.execute("SET TimeZone = 'UTC'")  # a connection setting, not the database's
            con.execute("SET enable_progress_bar = false")
        except BaseException:
            con.close()
            raise
        return con

    def reset(self) -> None:
        """Close the database (the next `connect` opens a new one): after a fatal error, or
        when done."""
        with self._lock:
            root, self._root = self._root, None
            if root is not None and self._pid == os.getpid():
                root.close()

    close = reset


# databases a forked child inherited: kept referenced so that it never closes them
_INHERITED: list[duckdb.DuckDBPyConnection] = []
# open databases, closed before the interpreter tears modules down (DuckDB's bindings
# report a database still open then as leaked objects)
_OPEN: weakref.WeakSet[SharedDuckDB] = weakref.WeakSet()
_AT_EXIT: list[bool] = []


def _close_at_exit(db: SharedDuckDB) -> None:
    _OPEN.add(db)
    if not _AT_EXIT:  # registered on first use, not at import
        atexit.register(_close_all)
        _AT_EXIT.append(True)


def _close_all() -> None:
    for db in list(_OPEN):
        with contextlib.suppress(duckdb.Error):
            db.close()
