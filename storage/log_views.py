"""DuckDB views over the Parquet logs, for `queries.py` and the label log's dedup lookup
(these modules alone use DuckDB, through `duckdb_conn.open_duckdb`).

A connection is in-memory and per call (no database file; a reader may keep the database
and open a connection to it per call, `duckdb_conn.SharedDuckDB`), under `[storage]`'s
memory limit, so any number of readers and writers coexist. It reads one listing of each
log's live parts (`log_files`: a merged file, never also the parts it replaces). Each log appears
deduplicated (`DEDUP`): one row per prediction `request_id` (the earliest `ts`, then the
earliest file, then row, wins), one row per Label Studio annotation version (annotation id
and `ts`, its `updated_at`: a corrected annotation has several) and per other label event,
one queue entry and one seed row per request id. A log with no files yet is an empty table
of the right schema, so every query still answers (empty table, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from storage.duckdb_conn import SharedDuckDB, open_duckdb, read_parts
from storage.home import DataHome, StorageError
from storage.objects import ObjectFolder, local_copies
from storage.parquet_parts import live_objects, live_parts
from storage.part_cache import PartCache
from storage.schemas import (
    ATTRS_TYPE,
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    QUEUE_SCHEMA,
    SEED_SCHEMA,
    TS_TYPE,
    VECTOR_TYPE,
)
from storage.settings import StorageSettings


def _field(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


CANDIDATE_COLUMNS = (
    "request_id", "ts", "model_version", "probs", "pred", "confidence", "margin", "entropy",
)  # fmt: skip
LABELED_SCHEMA = pa.schema(
    [
        _field("request_id", pa.string(), nullable=False),
        _field("ts", TS_TYPE),
        _field("features", VECTOR_TYPE),
        _field("input", pa.binary()),
        _field("attrs", ATTRS_TYPE),
        _field("label", pa.string()),
        _field("source", pa.string()),
        _field("n_annotators", pa.int64()),
        _field("disagreement", pa.bool_()),
    ]
)
AUDIT_SCHEMA = pa.schema(
    [
        _field("request_id", pa.string(), nullable=False),
        _field("ts", TS_TYPE),
        _field("model_version", pa.string()),
        _field("pred", pa.string()),
        _field("label", pa.string()),
        _field("correct", pa.bool_()),
    ]
)
# A queue entry with what a labeler needs: the input and the model's guess.
QUEUED_SCHEMA = pa.schema(
    [
        _field("request_id", pa.string(), nullable=False),
        _field("reason", pa.string()),
        _field("score", pa.float32()),
        _field("ls_task_id", pa.int64()),
        _field("queued_at", TS_TYPE),
        _field("ts", TS_TYPE),
        _field("model_version", pa.string()),
        _field("pred", pa.string()),
        _field("confidence", pa.float32()),
        _field("probs", VECTOR_TYPE),
        _field("input", pa.binary()),
        _field("input_uri", pa.string()),
        _field("attrs", ATTRS_TYPE),
    ]
)

# What `curation.sampling.pick` returns: one row per picked request id, audit picks first.
PICKS_SCHEMA = pa.schema(
    [
        _field("request_id", pa.string(), nullable=False),
        _field("reason", pa.string(), nullable=False),  # audit | uncertainty | random
        _field("score", pa.float64()),
    ]
)
# Uncertainty per strategy from the logged columns (higher = more uncertain), as
# `curation.sampling` computes it for tables without probs; "random" scores like least confidence.
SCORE_SQL = {
    "least_confidence": "1.0 - CAST(confidence AS DOUBLE)",
    "margin": "1.0 - CAST(margin AS DOUBLE)",
    "entropy": "CAST(entropy AS DOUBLE)",
    "random": "1.0 - CAST(confidence AS DOUBLE)",
}


# The readers' dedup rules, one per log: (what identifies a row, which copy is kept: the first
# in this order). `file_index` is the file's position in the name-sorted file list (see
# `log_files`), so it orders like the path at the cost of an integer. Compaction applies the
# same rules inside a merged group (`storage/compaction.py`).
FIRST_LOGGED = "ts, file_index, file_row_number"
LABEL_EVENT = (
    "ls_annotation_id, ts, "
    "CASE WHEN ls_annotation_id IS NULL THEN [request_id, label, source, annotator] END"
)
DEDUP = {
    "predictions": ("request_id", FIRST_LOGGED),
    "queue": ("request_id", FIRST_LOGGED),
    "seed": ("request_id", FIRST_LOGGED),
    # a Label Studio annotation version once; any other event (feedback, seed) once per
    # (request id, label, source, annotator, ts): a copy of the same event is no new answer
    "labels": (LABEL_EVENT, "file_index, file_row_number"),
}
_SCHEMAS = {
    "predictions": PREDICTION_SCHEMA,
    "queue": QUEUE_SCHEMA,
    "seed": SEED_SCHEMA,
    "labels": LABEL_SCHEMA,
}


def first_per_request(columns: str, raw: str = "predictions_raw") -> str:
    """The dedup rule of the `predictions` view (earliest `ts`, then earliest file, then row)
    on the given columns only: with narrow columns DuckDB never materialises features or
    inputs."""
    return (
        f"SELECT {columns} FROM {raw} "
        f"QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1"
    )


def fetch_rows(columns: Sequence[str], chosen: str) -> str:
    """Late materialisation: the wide `columns` of the prediction rows listed by the CTE
    `chosen` (file_index, file_row_number, ts), in (ts, request_id) order. Joining on `ts` too
    lets DuckDB skip the Parquet row groups outside the chosen rows' time range, so features
    and inputs are read for those rows, not for the whole log."""
    return (
        f"SELECT {cols(columns, 'p')} FROM predictions_raw p SEMI JOIN {chosen} c "
        "ON p.file_index = c.file_index AND p.file_row_number = c.file_row_number "
        "AND p.ts = c.ts ORDER BY p.ts, p.request_id"
    )


def choose_window(
    con: duckdb.DuckDBPyConnection,
    n: int,
    newest: bool = True,
    where: str = "TRUE",
    params: dict | None = None,
    raw: str = "predictions_raw",
) -> int:
    """Create the temp table `chosen` (request_id, ts, file_index, file_row_number): the
    newest (or oldest) `n` rows of the deduplicated log that satisfy `where`, in memory
    that grows with `n`, not with the log; return how many it holds.

    The first `k` raw rows in window order are taken (a streaming top-k: DuckDB skips the
    row groups whose `ts` range cannot make it), then those beaten by an earlier copy of
    their request id are dropped (a join whose hash table holds the k ids); if fewer than
    `n` remain while more rows exist, `k` grows. Same rows as the dedup view then
    `ORDER BY ts, request_id LIMIT n`: a row with an earlier copy is never in the view, and
    every other row ranks as it does there.
    """
    order = "DESC" if newest else "ASC"
    params = dict(params or {})
    k = n + max(1024, n // 4)
    while True:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE top_rows AS
                SELECT request_id, ts, file_index, file_row_number FROM {raw}
                WHERE {where}
                ORDER BY ts {order}, request_id {order}, file_index, file_row_number LIMIT $k""",
            params | {"k": k},
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE chosen AS
                WITH beaten AS (
                  SELECT DISTINCT t.file_index, t.file_row_number
                  FROM top_rows t JOIN {raw} r ON r.request_id = t.request_id
                  WHERE (r.ts, r.file_index, r.file_row_number)
                        < (t.ts, t.file_index, t.file_row_number)
                )
                SELECT * FROM top_rows t ANTI JOIN beaten b
                  ON t.file_index = b.file_index AND t.file_row_number = b.file_row_number
                ORDER BY ts {order}, request_id {order} LIMIT $n""",
            {"n": n},
        )
        got = con.execute("SELECT count(*) FROM chosen").fetchall()[0][0]
        taken = con.execute("SELECT count(*) FROM top_rows").fetchall()[0][0]
        if got >= n or taken < k:
            return int(got)
        k *= 4


def chosen_rows(columns: str) -> str:
    """The raw prediction rows `choose_window` put in `chosen`, with `columns`."""
    return (
        f"SELECT {columns} FROM predictions_raw p SEMI JOIN chosen c "
        "ON p.file_index = c.file_index AND p.file_row_number = c.file_row_number AND p.ts = c.ts"
    )


def cols(names: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{n}"' for n in names)


def _view(name: str) -> str:
    key, order = DEDUP[name]
    return (
        f"SELECT {cols(_SCHEMAS[name].names)}, file_index, file_row_number FROM {name}_raw "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
    )


# The label of a request id is its latest event; the later file, then row, breaks ties.
LATEST_LABEL = """
latest AS (
  SELECT request_id, label, source FROM labels
  QUALIFY row_number() OVER
    (PARTITION BY request_id ORDER BY ts DESC, file_index DESC, file_row_number DESC) = 1
)"""


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def log_files(folder: Path) -> list[str]:
    """The readers' one snapshot of a log: its live parts (`parquet_parts.live_parts`: a
    merged file, never also the parts it replaces), sorted by path, so that every statement
    of a query sees the same files and `file_index` means the same file in each (a writer
    may add a part, or compaction remove one, meanwhile)."""
    if isinstance(folder, ObjectFolder):  # local copies of the listed objects (objects.py)
        return local_copies(*live_objects(folder))
    return [str(p) for p in live_parts(folder)]


def connect(
    home: DataHome,
    *sources: str,
    settings: StorageSettings | None = None,
    database: SharedDuckDB | None = None,
    parts: PartCache | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection (under `[storage]`'s memory limit and threads) with a
    deduplicated view per requested log, over a fresh listing of its parts: a new database,
    or a new connection to `database` (its settings, not `settings`, apply then). With
    `parts`, a listing's rows come from those decoded parts (the same rows and columns,
    `storage.part_cache`) instead of being read from the files again."""
    con = database.connect() if database is not None else open_duckdb(settings)
    try:
        for name in sources:
            files = log_files(getattr(home, name))
            cached = parts.raw_table(name, files) if parts is not None and files else None
            if cached is not None:
                con.register(f"{name}_raw", cached)
            elif files:
                con.execute(
                    f"CREATE TEMP VIEW {name}_raw AS SELECT *, file_index FROM {read_parts(files)}"
                )
            else:
                con.register(f"{name}_raw", empty_raw(name))
            con.execute(f"CREATE TEMP VIEW {name} AS {_view(name)}")
    except BaseException:
        con.close()
        raise
    return con


def empty_raw(name: str) -> pa.Table:
    """The raw view of a log with no parts: no rows, its columns and the reader's."""
    empty = _SCHEMAS[name].empty_table()
    for column, type_ in (
        ("filename", pa.string()),
        ("file_row_number", pa.int64()),
        ("file_index", pa.uint64()),
    ):
        empty = empty.append_column(column, pa.array([], type_))
    return empty


def dedup_view(name: str) -> str:
    """The SQL of log `name`'s deduplicated view over `<name>_raw` (`DEDUP`)."""
    return _view(name)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """DuckDB names list children differently; give callers exactly the documented schema."""
    return table.select(schema.names).cast(schema)


def prediction_schema(columns: Sequence[str] | None) -> pa.Schema:
    if columns is None:
        return PREDICTION_SCHEMA
    for c in columns:
        if c not in PREDICTION_SCHEMA.names:
            raise StorageError(
                f"column {c!r} is not in the prediction log: choose from {PREDICTION_SCHEMA.names}"
            )
    return pa.schema([PREDICTION_SCHEMA.field(c) for c in columns])


def check_rows(n: int | None, name: str, allow_none: bool = False) -> None:
    if n is None and allow_none:
        return
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise StorageError(f"{name} is {n!r}: pass a non-negative whole number of rows")
