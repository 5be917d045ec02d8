"""One DuckDB connection kept per set of logs a reader's queries read, for a reader that
holds the logs' parts decoded (`storage.part_cache`, `Queries(..., cache_parts=True)`).

Why: a query's own connection (`log_views.connect`) costs ~8 ms before the query runs, most
of it making the views again (two per log); a loop asks ~10 questions a batch of logs that
are a few thousand rows, so that was a good part of each answer. Kept, a connection has its
dedup views made once; each call lists the logs again (a writer may have added a part) and
re-registers a log's raw table only when its listing changed. A view binds the names it
reads when a query runs, so it then reads the new table: the rows and columns are those a
new connection would read, and so are the answers.

Statements a query runs leave temp objects behind (`chosen`, `top_rows`, `wanted`): each
query makes them with CREATE OR REPLACE or `register`, which replace. After a failed
statement the reader forgets every kept connection (`forget`), and the next call opens new
ones. One thread at a time per reader, as the loop uses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import cache
from typing import Any

import duckdb
import pyarrow as pa

from storage.log_views import dedup_view, empty_raw, log_files


@cache
def _empty(name: str) -> pa.Table:
    return empty_raw(name)  # one object per log: a log that stays empty is registered once


class KeptConnections:
    """`connection(sources)`: the kept connection, registered for the current listings."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader  # a `storage.queries.Queries` (its home, parts and database)
        self._conns: dict[tuple[str, ...], tuple[duckdb.DuckDBPyConnection, list]] = {}

    def connection(self, sources: Sequence[str]) -> duckdb.DuckDBPyConnection | None:
        """None when a listing cannot come from the decoded parts (parts of different
        schemas, a part gone): the caller then reads the files with `log_views.connect`."""
        reader, tables = self.reader, []
        for name in sources:
            files = log_files(getattr(reader.home, name))
            table = reader.parts.raw_table(name, files) if files else _empty(name)
            if table is None:
                return None
            tables.append(table)
        key = tuple(sources)
        found = self._conns.get(key)
        if found is None:
            con = reader.database.connect()
            try:
                for name in sources:  # the views bind `<name>_raw` when a query runs
                    con.register(f"{name}_raw", _empty(name))
                    con.execute(f"CREATE TEMP VIEW {name} AS {dedup_view(name)}")
            except BaseException:
                con.close()
                raise
            found = self._conns[key] = (con, [None] * len(sources))
        con, shown = found
        for i, (name, table) in enumerate(zip(sources, tables, strict=True)):
            if shown[i] is not table:
                con.register(f"{name}_raw", table)
                shown[i] = table
        return con

    def forget(self) -> None:
        """Close every kept connection (after an error, or when the reader closes)."""
        conns, self._conns = self._conns, {}
        for con, _ in conns.values():
            with contextlib.suppress(duckdb.Error):
                con.close()
