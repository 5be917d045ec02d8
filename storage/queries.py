"""Read-side of the logs: the only module that talks to DuckDB.

Each call opens an in-memory DuckDB connection over the Parquet parts (no database file, so
any number of readers and writers coexist). Every reader sees the logs deduplicated: one row
per prediction `request_id` (the earliest `ts`, then the earliest file, wins), one row per
Label Studio annotation id, one queue entry per request id. With no files yet, the views are
empty tables of the right schema, so every query still answers (empty table, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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

CANDIDATE_COLUMNS = (
    "request_id", "ts", "model_version", "probs", "pred", "confidence", "margin", "entropy",
)  # fmt: skip
LABELED_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE),
        pa.field("features", VECTOR_TYPE),
        pa.field("input", pa.binary()),
        pa.field("attrs", ATTRS_TYPE),
        pa.field("label", pa.string()),
        pa.field("source", pa.string()),
        pa.field("n_annotators", pa.int64()),
        pa.field("disagreement", pa.bool_()),
    ]
)
AUDIT_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE),
        pa.field("model_version", pa.string()),
        pa.field("pred", pa.string()),
        pa.field("label", pa.string()),
        pa.field("correct", pa.bool_()),
    ]
)


def _cols(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


# Dedup views over the raw parts; `filename` breaks ties between equal timestamps.
_VIEWS = {
    "predictions": (
        PREDICTION_SCHEMA,
        f"SELECT {_cols(PREDICTION_SCHEMA.names)}, filename FROM predictions_raw "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1",
    ),
    "labels": (
        LABEL_SCHEMA,
        f"SELECT {_cols(LABEL_SCHEMA.names)}, filename FROM labels_raw QUALIFY "
        "ls_annotation_id IS NULL OR row_number() OVER "
        "(PARTITION BY ls_annotation_id ORDER BY ts, filename) = 1",
    ),
    "queue": (
        QUEUE_SCHEMA,
        f"SELECT {_cols(QUEUE_SCHEMA.names)}, filename FROM queue_raw "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1",
    ),
    "seed": (
        SEED_SCHEMA,
        f"SELECT {_cols(SEED_SCHEMA.names)}, filename FROM seed_raw "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1",
    ),
}

_LATEST_LABEL = """
latest AS (
  SELECT request_id, label, source FROM labels
  QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts DESC, filename DESC) = 1
)"""


def _has_parts(folder: Path) -> bool:
    return folder.is_dir() and next(folder.rglob("*.parquet"), None) is not None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """DuckDB names list children differently; give callers exactly the documented schema."""
    return table.select(schema.names).cast(schema)


def _check_rows(n: int | None, name: str, allow_none: bool = False) -> None:
    if n is None and allow_none:
        return
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise StorageError(f"{name} is {n!r}: pass a non-negative whole number of rows")


class Queries:
    """Questions the loop asks of its logs; every answer is an Arrow table or a number."""

    def __init__(self, home: DataHome) -> None:
        self.home = home

    def _folder(self, name: str) -> Path:
        return getattr(self.home, name)

    def _connect(self, *sources: str) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for name in sources:
            schema, view = _VIEWS[name]
            folder = self._folder(name)
            if _has_parts(folder):
                glob = _literal(f"{folder}/**/*.parquet")
                con.execute(
                    f"CREATE TEMP VIEW {name}_raw AS SELECT * FROM read_parquet({glob}, "
                    "hive_partitioning=true, union_by_name=true, filename=true)"
                )
            else:
                empty = schema.empty_table().append_column("filename", pa.array([], pa.string()))
                con.register(f"{name}_raw", empty)
            con.execute(f"CREATE TEMP VIEW {name} AS {view}")
        return con

    def _table(self, sql: str, params: dict, schema: pa.Schema, *sources: str) -> pa.Table:
        con = self._connect(*sources)
        try:
            return _conform(con.sql(sql, params=params).to_arrow_table(), schema)
        finally:
            con.close()

    def _scalar(self, sql: str, params: dict, *sources: str) -> int:
        con = self._connect(*sources)
        try:
            return int(con.execute(sql, params).fetchall()[0][0])
        finally:
            con.close()

    def _column_set(self, sql: str, source: str) -> set:
        con = self._connect(source)
        try:
            return {row[0] for row in con.execute(sql).fetchall()}
        finally:
            con.close()

    @staticmethod
    def _schema(columns: Sequence[str] | None) -> pa.Schema:
        if columns is None:
            return PREDICTION_SCHEMA
        for c in columns:
            if c not in PREDICTION_SCHEMA.names:
                raise StorageError(
                    f"column {c!r} is not in the prediction log: choose from {PREDICTION_SCHEMA.names}"
                )
        return pa.schema([PREDICTION_SCHEMA.field(c) for c in columns])

    def count_predictions(self, model_version: str | None = None) -> int:
        """Distinct predictions (request ids), optionally of one model version."""
        if model_version is None:
            return self._scalar("SELECT count(DISTINCT request_id) FROM predictions_raw", {}, "predictions")
        sql = "SELECT count(*) FROM predictions WHERE model_version = $mv"
        return self._scalar(sql, {"mv": model_version}, "predictions")

    def _window(self, n_rows: int, model_version: str | None, columns, newest: bool) -> pa.Table:
        _check_rows(n_rows, "n_rows")
        schema = self._schema(columns)
        order = "DESC" if newest else "ASC"
        sql = f"""
            SELECT {_cols(schema.names)} FROM (
              SELECT * FROM predictions WHERE $mv IS NULL OR model_version = $mv
              ORDER BY ts {order}, request_id {order} LIMIT $n
            ) ORDER BY ts, request_id"""
        return self._table(sql, {"mv": model_version, "n": n_rows}, schema, "predictions")

    def recent_predictions(
        self, n_rows: int, model_version: str | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """The last `n_rows` predictions by `ts`, in ascending `ts` order (a current window)."""
        return self._window(n_rows, model_version, columns, newest=True)

    def first_predictions(
        self, n_rows: int, model_version: str | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """The first `n_rows` predictions by `ts` (a reference window for drift)."""
        return self._window(n_rows, model_version, columns, newest=False)

    def candidates(self, window_rows: int) -> pa.Table:
        """Among the latest `window_rows` champion predictions, those neither queued nor labeled:
        what curation may still send to annotators."""
        _check_rows(window_rows, "window_rows")
        schema = self._schema(CANDIDATE_COLUMNS)
        sql = f"""
            WITH recent AS (
              SELECT * FROM predictions WHERE role = 'champion'
              ORDER BY ts DESC, request_id DESC LIMIT $n
            )
            SELECT {_cols(schema.names)} FROM recent r
            WHERE NOT EXISTS (SELECT 1 FROM queue q WHERE q.request_id = r.request_id)
              AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = r.request_id)
            ORDER BY ts, request_id"""
        return self._table(sql, {"n": window_rows}, schema, "predictions", "queue", "labels")

    def labeled_examples(self, window_rows: int | None = None) -> pa.Table:
        """Training rows: the latest label per request id, with features/input/attrs from the
        prediction log (or the seed), the number of annotators and whether their latest labels
        disagree. `window_rows` keeps the most recent rows by example `ts`; seed rows count as
        the oldest. Ascending order (seed first, then by `ts`)."""
        _check_rows(window_rows, "window_rows", allow_none=True)
        sql = f"""
            WITH {_LATEST_LABEL},
            per_annotator AS (
              SELECT request_id, annotator, label FROM labels
              QUALIFY row_number() OVER
                (PARTITION BY request_id, annotator ORDER BY ts DESC, filename DESC) = 1
            ),
            agreement AS (
              SELECT request_id, count(DISTINCT annotator) AS n_annotators,
                     count(DISTINCT label) > 1 AS disagreement
              FROM per_annotator GROUP BY request_id
            ),
            examples AS (
              SELECT request_id, ts, features, "input", attrs, 1 AS origin FROM predictions
              UNION ALL
              SELECT request_id, ts, features, "input", attrs, 0 AS origin FROM seed
            ),
            example AS (
              SELECT * FROM examples
              QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY origin DESC) = 1
            ),
            joined AS (
              SELECT e.*, l.label, l.source, a.n_annotators, a.disagreement
              FROM example e JOIN latest l USING (request_id) JOIN agreement a USING (request_id)
              ORDER BY origin DESC, ts DESC, request_id DESC LIMIT $n
            )
            SELECT {_cols(LABELED_SCHEMA.names)} FROM joined ORDER BY origin, ts, request_id"""
        return self._table(
            sql, {"n": window_rows}, LABELED_SCHEMA, "predictions", "seed", "labels"
        )

    def audit_outcomes(self, last_n: int, model_version: str | None = None) -> pa.Table:
        """Was the model right on the random audit share? Only these labels are an unbiased
        sample (uncertainty-picked labels over-represent hard rows), so accuracy estimates use
        them alone. The latest `last_n` by prediction `ts`, ascending."""
        _check_rows(last_n, "last_n")
        sql = f"""
            WITH {_LATEST_LABEL},
            audited AS (
              SELECT p.request_id, p.ts, p.model_version, p.pred, l.label,
                     p.pred = l.label AS correct
              FROM predictions p JOIN latest l USING (request_id)
              WHERE EXISTS (SELECT 1 FROM queue q
                            WHERE q.request_id = p.request_id AND q.reason = 'audit')
                AND ($mv IS NULL OR p.model_version = $mv)
              ORDER BY p.ts DESC, p.request_id DESC LIMIT $n
            )
            SELECT {_cols(AUDIT_SCHEMA.names)} FROM audited ORDER BY ts, request_id"""
        params = {"n": last_n, "mv": model_version}
        return self._table(sql, params, AUDIT_SCHEMA, "predictions", "queue", "labels")

    def pending_labels(self) -> int:
        """Queued for labeling and not labeled yet."""
        sql = """SELECT count(*) FROM queue q
                 WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = q.request_id)"""
        return self._scalar(sql, {}, "queue", "labels")

    def label_counts(self) -> dict[str, int]:
        """Labeled request ids per label source (an id labeled twice by one source counts once)."""
        con = self._connect("labels")
        try:
            rows = con.execute(
                "SELECT source, count(DISTINCT request_id) FROM labels GROUP BY source ORDER BY source"
            ).fetchall()
        finally:
            con.close()
        return {source: int(n) for source, n in rows}

    def prediction_frame(
        self, request_ids: Sequence[str], columns: Sequence[str] | None = None
    ) -> pa.Table:
        """The logged rows of these request ids, in the order given (unknown ids are absent)."""
        schema = self._schema(columns)
        ids = pa.table({"request_id": pa.array(list(request_ids), pa.string()),
                        "pos": pa.array(range(len(request_ids)), pa.int64())})  # fmt: skip
        con = self._connect("predictions")
        try:
            con.register("wanted", ids)
            sql = f"""SELECT {_cols(["p." + c for c in schema.names])} FROM predictions p
                      JOIN (SELECT request_id, min(pos) AS pos FROM wanted GROUP BY request_id) w
                      USING (request_id) ORDER BY w.pos"""
            return _conform(con.sql(sql).to_arrow_table(), schema)
        finally:
            con.close()

    def queued_ids(self) -> set[str]:
        return self._column_set("SELECT request_id FROM queue", "queue")

    def annotation_ids(self) -> set[int]:
        """Label Studio annotation ids already in the label log (for idempotent sync)."""
        sql = "SELECT DISTINCT ls_annotation_id FROM labels WHERE ls_annotation_id IS NOT NULL"
        return self._column_set(sql, "labels")

    def seed_ids(self) -> set[str]:
        return self._column_set("SELECT request_id FROM seed", "seed")
