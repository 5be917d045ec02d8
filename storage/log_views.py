"""DuckDB views over the Parquet logs, for `queries.py` and the label log's dedup lookup
(these modules alone use DuckDB).

A connection is in-memory and per call (no database file), so any number of readers and
writers coexist. Each log appears deduplicated: one row per prediction `request_id` (the
earliest `ts`, then the earliest file, wins), one row per Label Studio annotation version
(annotation id and `ts`, its `updated_at`: a corrected annotation has several), one
queue entry and one seed row per request id. A log with no files yet is an empty table of
the right schema, so every query still answers (empty table, 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from storage.home import DataHome, StorageError
from storage.schemas import (
    ATTRS_TYPE,
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    QUEUE_SCHEMA,
    SEED_SCHEMA,
    TS_TYPE,
    VECTOR_TYPE,
)


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

# What curation_picks returns: one row per picked request id, audit picks first.
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


def first_per_request(columns: str, raw: str = "predictions_raw") -> str:
    """The dedup rule of the `predictions` view (earliest `ts`, then earliest file) on the
    given columns only: with narrow columns DuckDB never materialises features or inputs."""
    return (
        f"SELECT {columns} FROM {raw} "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1"
    )


def fetch_rows(columns: Sequence[str], chosen: str) -> str:
    """Late materialisation: the wide `columns` of the prediction rows listed by the CTE
    `chosen` (filename, file_row_number, ts), in (ts, request_id) order. Joining on `ts` too
    lets DuckDB skip the Parquet row groups outside the chosen rows' time range, so features
    and inputs are read for those rows, not for the whole log."""
    return (
        f"SELECT {cols(columns, 'p')} FROM predictions_raw p SEMI JOIN {chosen} c "
        "ON p.filename = c.filename AND p.file_row_number = c.file_row_number AND p.ts = c.ts "
        "ORDER BY p.ts, p.request_id"
    )


def cols(names: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{n}"' for n in names)


def _first_per(key: str, schema: pa.Schema, raw: str) -> str:
    return (
        f"SELECT {cols(schema.names)}, filename FROM {raw} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ts, filename) = 1"
    )


_VIEWS = {
    "predictions": (
        PREDICTION_SCHEMA,
        _first_per("request_id", PREDICTION_SCHEMA, "predictions_raw"),
    ),
    "labels": (
        LABEL_SCHEMA,
        f"SELECT {cols(LABEL_SCHEMA.names)}, filename FROM labels_raw QUALIFY "
        "ls_annotation_id IS NULL OR row_number() OVER "
        "(PARTITION BY ls_annotation_id, ts ORDER BY filename) = 1",
    ),
    "queue": (QUEUE_SCHEMA, _first_per("request_id", QUEUE_SCHEMA, "queue_raw")),
    "seed": (SEED_SCHEMA, _first_per("request_id", SEED_SCHEMA, "seed_raw")),
}

# The label of a request id is its latest event; `filename` breaks ties.
LATEST_LABEL = """
latest AS (
  SELECT request_id, label, source FROM labels
  QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts DESC, filename DESC) = 1
)"""


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(home: DataHome, *sources: str) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a deduplicated view per requested log."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # library code: no bars in flow logs
    for name in sources:
        schema, view = _VIEWS[name]
        folder = getattr(home, name)
        if folder.is_dir() and next(folder.rglob("*.parquet"), None) is not None:
            glob = literal(f"{folder}/**/*.parquet")
            con.execute(
                f"CREATE TEMP VIEW {name}_raw AS SELECT * FROM read_parquet({glob}, "
                "hive_partitioning=true, union_by_name=true, filename=true, "
                "file_row_number=true)"
            )
        else:
            empty = schema.empty_table().append_column("filename", pa.array([], pa.string()))
            empty = empty.append_column("file_row_number", pa.array([], pa.int64()))
            con.register(f"{name}_raw", empty)
        con.execute(f"CREATE TEMP VIEW {name} AS {view}")
    return con


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
