"""The questions curation and drift checks ask of the prediction log: which rows may still
go to annotators, which to pick (decided inside DuckDB), and a window streamed in bounded
memory.

A mixin of `storage.queries.Queries` (it uses its `home`, `_run` and `_table`), so that
`Queries` keeps one API while each module holds one concern.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from storage.log_views import (
    CANDIDATE_COLUMNS,
    SCORE_SQL,
    check_rows,
    cols,
    fetch_rows,
    first_per_request,
    literal,
    prediction_schema,
)
from storage.picks import check_pick_args, combine_picks


class CurationQueries:
    """Curation and window queries of `Queries`; not used on its own."""

    def candidates(self, window_rows: int) -> pa.Table:
        """Among the latest `window_rows` champion predictions, those neither queued nor labeled:
        what curation may still send to annotators."""
        check_rows(window_rows, "window_rows")
        keys = first_per_request("request_id, ts, role, filename, file_row_number")
        sql = f"""
            WITH recent AS (
              SELECT request_id, filename, file_row_number, ts FROM ({keys})
              WHERE role = 'champion' ORDER BY ts DESC, request_id DESC LIMIT $n
            ),
            chosen AS (
              SELECT * FROM recent r
              WHERE NOT EXISTS (SELECT 1 FROM queue q WHERE q.request_id = r.request_id)
                AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = r.request_id)
            )
            {fetch_rows(CANDIDATE_COLUMNS, "chosen")}"""
        schema = prediction_schema(CANDIDATE_COLUMNS)
        return self._table(sql, {"n": window_rows}, schema, "predictions", "queue", "labels")

    def window_batches(
        self,
        n_rows: int,
        model_version: str | None = None,
        newest: bool = True,
        columns: Sequence[str] = ("features", "pred", "confidence"),
        batch_rows: int = 131_072,
        memory_limit_mb: int = 1024,
        role: str | None = None,
        sample_rows: int | None = None,
        seed: int = 0,
    ) -> Iterator[pa.RecordBatch]:
        """The same rows as `recent_predictions` (or `first_predictions` when `newest` is
        False), streamed as Arrow batches in no particular order, in bounded memory: what a
        drift check over millions of rows reads (`curation.drift.compute_drift_streaming`).

        The window is chosen on the small key columns first (dedup by request id, newest or
        oldest `n_rows`, of one `role` if given), then only its rows' wide columns are read,
        from the Parquet row groups inside the window's time range. `sample_rows` keeps a
        seeded uniform sample of the window (ordered by a hash of the request id, as the
        curation audit draw). DuckDB may spill to a temporary folder beyond `memory_limit_mb`.
        """
        check_rows(n_rows, "n_rows")
        check_rows(sample_rows, "sample_rows", allow_none=True)
        check_rows(batch_rows, "batch_rows")
        check_rows(memory_limit_mb, "memory_limit_mb")
        schema = prediction_schema(columns)
        order = "DESC" if newest else "ASC"
        files = sorted(str(f) for f in self.home.predictions.rglob("*.parquet"))
        if not files or n_rows == 0:
            return
        spill = tempfile.mkdtemp(prefix="loopwright-duckdb-")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
            con.execute(f"SET temp_directory = {literal(spill)}")
            con.execute("SET preserve_insertion_order = false")
            # one fixed file list, so that file_index means the same file in both statements
            # even if a writer adds a part in between
            con.execute(
                "CREATE TEMP VIEW predictions_raw AS SELECT *, file_index FROM read_parquet(["
                + ", ".join(literal(f) for f in files)
                + "], hive_partitioning=true, union_by_name=true, filename=true, "
                "file_row_number=true)"
            )
            keys = first_per_request(
                "request_id, ts, model_version, role, file_index, file_row_number"
            )
            sample = (
                ""
                if sample_rows is None
                else "ORDER BY hash(request_id || $salt), request_id LIMIT $k"
            )
            con.execute(
                f"""CREATE TEMP TABLE win AS SELECT fi, frn, ts FROM (
                  SELECT file_index AS fi, file_row_number AS frn, ts, request_id FROM ({keys})
                  WHERE ($mv IS NULL OR model_version = $mv) AND ($role IS NULL OR role = $role)
                  ORDER BY ts {order}, request_id {order} LIMIT $n
                ) {sample}""",
                {"mv": model_version, "role": role, "n": n_rows}
                | ({} if sample_rows is None else {"k": sample_rows, "salt": f"#{int(seed)}"}),
            )
            lo, hi = con.execute("SELECT min(ts), max(ts) FROM win").fetchall()[0]
            if lo is None:
                return
            sql = f"""SELECT {cols(schema.names, "p")} FROM predictions_raw p
                      SEMI JOIN win w ON p.file_index = w.fi AND p.file_row_number = w.frn
                      WHERE p.ts BETWEEN $lo AND $hi"""
            reader = con.sql(sql, params={"lo": lo, "hi": hi}).fetch_record_batch(batch_rows)
            for batch in reader:
                yield batch.select(schema.names).cast(schema)
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def curation_picks(
        self,
        window_rows: int | None,
        budget: int,
        strategy: str,
        audit_share: float = 0.2,
        seed: int = 0,
    ) -> pa.Table:
        """What to send for labels, decided inside DuckDB: `curation.sampling.select`'s rule
        over `candidates(window_rows)` (`None`: every champion row), without moving the
        candidates into Python.

        Returns `PICKS_SCHEMA` (request_id, reason, score): a uniformly random audit share
        first (a seeded hash of the request id orders the draw, so the result does not depend
        on row order), then the top uncertainty scores (ties to the smaller request id), or
        random picks under strategy "random". Scores come from the logged `confidence`,
        `margin` and `entropy` columns, as `select` computes them when a table has no probs.
        """
        check_rows(window_rows, "window_rows", allow_none=True)
        check_pick_args(budget, strategy, audit_share, SCORE_SQL)
        keys = first_per_request("request_id, ts, role, confidence, margin, entropy")
        window = "" if window_rows is None else "ORDER BY ts DESC, request_id DESC LIMIT $n"
        sql = f"""
            WITH recent AS (
              SELECT * FROM ({keys}) WHERE role = 'champion' {window}
            ),
            eligible AS (
              SELECT request_id, {SCORE_SQL[strategy]} AS score,
                     hash(request_id || $salt) AS draw
              FROM recent r
              WHERE NOT EXISTS (SELECT 1 FROM queue_raw q WHERE q.request_id = r.request_id)
                AND NOT EXISTS (SELECT 1 FROM labels_raw l WHERE l.request_id = r.request_id)
            ),
            audit AS (SELECT * FROM eligible ORDER BY draw, request_id LIMIT $budget),
            top AS (SELECT * FROM eligible ORDER BY score DESC, request_id LIMIT $budget)
            SELECT 'draw' AS kind, request_id, score, draw, (SELECT count(*) FROM eligible) AS n
            FROM audit
            UNION ALL
            SELECT 'top', request_id, score, draw, (SELECT count(*) FROM eligible) FROM top"""
        params = {"budget": int(budget), "salt": f"#{int(seed)}"}
        if window_rows is not None:
            params["n"] = window_rows
        rows = self._run(
            ("predictions", "queue", "labels"),
            lambda con: con.sql(sql, params=params).to_arrow_table(),
        )
        return combine_picks(rows, budget, strategy, audit_share)
