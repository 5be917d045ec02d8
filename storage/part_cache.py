"""The logs' Parquet parts held in memory as Arrow tables, for a reader that asks many
questions of a small log (the benchmark: ~10 queries a batch over ~30 parts per log).

Why: each DuckDB query over `read_parquet([...30 parts...])` opens and decodes every part
again, ~7-10 ms per log mentioned; a part never changes once visible (written under a
temporary name, renamed into place; compaction writes a new file and deletes old ones), so
its decoded rows can be kept, keyed by (path, mtime, size). What DuckDB then scans is the
same rows with the same columns `read_parts` gives (the file's columns, `file_row_number`,
`filename`, the hive `date`, `file_index`), so every query answers exactly as over the files.

Not for production readers: the memory held grows with the log (the point of `[storage]
memory_limit_mb` is that it does not), so only a caller that says so uses it
(`Queries(..., cache_parts=True)`). A listing this cannot reproduce exactly (parts with
different schemas, read with `union_by_name`; a partition folder other than `date=`) or a
part that vanished is answered None, and the caller reads the files as before.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

# what `read_parquet(..., filename=true, file_row_number=true, hive_partitioning=true)` adds,
# in DuckDB's order, then `file_index` (log_views.connect selects `*, file_index`)
ROW_NUMBER, FILENAME, DATE, FILE_INDEX = "file_row_number", "filename", "date", "file_index"
HIVE_KEY = "date="


def _partition_date(path: str) -> dt.date | None | bool:
    """The hive `date=` value of the part's folder; None if the folder is no partition,
    False if it is one this module does not reproduce (another key, or not a date)."""
    folder = os.path.basename(os.path.dirname(path))
    if "=" not in folder:
        return None
    if not folder.startswith(HIVE_KEY):
        return False
    try:
        return dt.date.fromisoformat(folder[len(HIVE_KEY) :])
    except ValueError:
        return False


class PartCache:
    """Decoded parts by file version, and the last combined table per listing."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int, int], pa.Table] = {}
        self._combined: dict[str, tuple[tuple, pa.Table]] = {}  # log -> (listing, table)

    def __len__(self) -> int:
        return len(self._parts)

    def _part(self, path: str) -> tuple[tuple[str, int, int], pa.Table] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_mtime_ns, st.st_size)
        found = self._parts.get(key)
        if found is None:
            day = _partition_date(path)
            if day is False:
                return None
            try:
                found = pq.ParquetFile(path).read().replace_schema_metadata(None)
            except (OSError, pa.ArrowException):
                return None
            n = found.num_rows
            found = found.append_column(ROW_NUMBER, pa.array(range(n), pa.int64()))
            found = found.append_column(FILENAME, pa.array([path] * n, pa.string()))
            if day is not None:
                found = found.append_column(DATE, pa.array([day] * n, pa.date32()))
            self._parts[key] = found
        return key, found

    def raw_table(self, log: str, files: Sequence[str]) -> pa.Table | None:
        """The rows of `files` (a sorted listing of `log`) as `read_parts(files)` reads them,
        plus `file_index`; None when that cannot be reproduced exactly (see the module doc)."""
        keys, tables = [], []
        for path in files:
            got = self._part(path)
            if got is None:
                return None
            keys.append(got[0])
            tables.append(got[1])
        key = tuple(keys)
        last = self._combined.get(log)
        if last is not None and last[0] == key:
            return last[1]
        first = tables[0].schema
        if any(not t.schema.equals(first) for t in tables[1:]):
            return None  # parts differ (union_by_name), or some lie in no partition
        index = pa.chunked_array(
            [pa.array([i] * t.num_rows, pa.uint64()) for i, t in enumerate(tables)], pa.uint64()
        )
        combined = pa.concat_tables(tables).append_column(FILE_INDEX, index)
        # the log's new listing replaces its last one; parts no listing names are dropped
        self._combined[log] = (key, combined)
        live = {k for listing, _ in self._combined.values() for k in listing}
        self._parts = {k: v for k, v in self._parts.items() if k in live}
        return combined
