"""Questions the loop asks of its logs, answered by DuckDB over the Parquet parts.

Every answer is an Arrow table in a documented schema, or a number; the views and their
deduplication rules are in `log_views.py`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from storage.home import DataHome
from storage.log_views import (
    AUDIT_SCHEMA,
    CANDIDATE_COLUMNS,
    LABELED_SCHEMA,
    LATEST_LABEL,
    PICKS_SCHEMA,
    QUEUED_SCHEMA,
    SCORE_SQL,
    check_rows,
    cols,
    conform,
    connect,
    fetch_rows,
    first_per_request,
    literal,
    prediction_schema,
)
from storage.picks import check_pick_args, combine_picks

__all__ = ["AUDIT_SCHEMA", "LABELED_SCHEMA", "PICKS_SCHEMA", "QUEUED_SCHEMA", "Queries"]


class Queries:
    """`Queries(home).candidates(2000)`: read-only; opens one DuckDB connection per call."""

    def __init__(self, home: DataHome) -> None:
        self.home = home

    def _run(self, sources: Sequence[str], fn):
        con = connect(self.home, *sources)
        try:
            return fn(con)
        finally:
            con.close()

    def _table(self, sql: str, params: dict, schema: pa.Schema, *sources: str) -> pa.Table:
        def go(con: duckdb.DuckDBPyConnection) -> pa.Table:
            return conform(con.sql(sql, params=params).to_arrow_table(), schema)

        return self._run(sources, go)

    def _rows(self, sql: str, params: dict, *sources: str) -> list[tuple]:
        return self._run(sources, lambda con: con.execute(sql, params).fetchall())

    def count_predictions(self, model_version: str | None = None) -> int:
        """Distinct predictions (request ids), optionally of one model version."""
        if model_version is None:
            sql = "SELECT count(DISTINCT request_id) FROM predictions_raw"
            return int(self._rows(sql, {}, "predictions")[0][0])
        sql = "SELECT count(*) FROM predictions WHERE model_version = $mv"
        return int(self._rows(sql, {"mv": model_version}, "predictions")[0][0])

    def _window(self, n_rows: int, model_version: str | None, columns, newest: bool) -> pa.Table:
        check_rows(n_rows, "n_rows")
        schema = prediction_schema(columns)
        order = "DESC" if newest else "ASC"
        keys = first_per_request("request_id, ts, model_version, filename, file_row_number")
        sql = f"""
            WITH chosen AS (
              SELECT filename, file_row_number, ts FROM ({keys})
              WHERE $mv IS NULL OR model_version = $mv
              ORDER BY ts {order}, request_id {order} LIMIT $n
            )
            {fetch_rows(schema.names, "chosen")}"""
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

    def labeled_examples(self, window_rows: int | None = None) -> pa.Table:
        """Training rows: the latest label per request id, with features/input/attrs from the
        prediction log (or the seed), the number of annotators and whether their latest labels
        disagree. `window_rows` keeps the most recent rows by example `ts`; seed rows count as
        the oldest. Ascending order (seed first, then by `ts`)."""
        check_rows(window_rows, "window_rows", allow_none=True)
        sql = f"""
            WITH {LATEST_LABEL},
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
            logged AS (  -- the `predictions` dedup rule, on labeled ids only (not the whole log)
              SELECT request_id, ts, features, "input", attrs FROM predictions_raw r
              WHERE r.request_id IN (SELECT request_id FROM latest)
              QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1
            ),
            examples AS (
              SELECT request_id, ts, features, "input", attrs, 1 AS origin FROM logged
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
            SELECT {cols(LABELED_SCHEMA.names)} FROM joined ORDER BY origin, ts, request_id"""
        sources = ("predictions", "seed", "labels")
        return self._table(sql, {"n": window_rows}, LABELED_SCHEMA, *sources)

    def audit_outcomes(self, last_n: int, model_version: str | None = None) -> pa.Table:
        """Was the model right on the random audit share? Only these labels are an unbiased
        sample (uncertainty-picked labels over-represent hard rows), so accuracy estimates use
        them alone. The latest `last_n` by prediction `ts`, ascending."""
        check_rows(last_n, "last_n")
        sql = f"""
            WITH {LATEST_LABEL},
            audited AS (
              SELECT p.request_id, p.ts, p.model_version, p.pred, l.label,
                     p.pred = l.label AS correct
              FROM predictions p JOIN latest l USING (request_id)
              WHERE EXISTS (SELECT 1 FROM queue q
                            WHERE q.request_id = p.request_id AND q.reason = 'audit')
                AND ($mv IS NULL OR p.model_version = $mv)
              ORDER BY p.ts DESC, p.request_id DESC LIMIT $n
            )
            SELECT {cols(AUDIT_SCHEMA.names)} FROM audited ORDER BY ts, request_id"""
        params = {"n": last_n, "mv": model_version}
        return self._table(sql, params, AUDIT_SCHEMA, "predictions", "queue", "labels")

    def queued(self, unlabeled_only: bool = False) -> pa.Table:
        """Queue entries with the prediction a labeler is shown (input, pred, confidence),
        oldest queued first; `unlabeled_only` drops those already labeled."""
        sql = f"""
            WITH shown AS (  -- the `predictions` dedup rule, on queued ids only
              SELECT request_id, {cols(QUEUED_SCHEMA.names[5:])} FROM predictions_raw r
              WHERE r.request_id IN (SELECT request_id FROM queue)
              QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1
            )
            SELECT q.request_id, q.reason, q.score, q.ls_task_id, q.ts AS queued_at,
                   {cols(QUEUED_SCHEMA.names[5:], "p")}
            FROM queue q LEFT JOIN shown p USING (request_id)
            WHERE NOT $unlabeled_only
               OR NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = q.request_id)
            ORDER BY q.ts, q.request_id"""
        params = {"unlabeled_only": bool(unlabeled_only)}
        return self._table(sql, params, QUEUED_SCHEMA, "queue", "predictions", "labels")

    def pending_labels(self) -> int:
        """Queued for labeling and not labeled yet."""
        sql = """SELECT count(*) FROM queue q
                 WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = q.request_id)"""
        return int(self._rows(sql, {}, "queue", "labels")[0][0])

    def label_counts(self) -> dict[str, int]:
        """Labeled request ids per label source (an id labeled twice by one source counts once)."""
        sql = (
            "SELECT source, count(DISTINCT request_id) FROM labels GROUP BY source ORDER BY source"
        )
        return {source: int(n) for source, n in self._rows(sql, {}, "labels")}

    def prediction_frame(
        self, request_ids: Sequence[str], columns: Sequence[str] | None = None
    ) -> pa.Table:
        """The logged rows of these request ids, in the order given (unknown ids are absent)."""
        schema = prediction_schema(columns)
        wanted = pa.table(
            {
                "request_id": pa.array(list(request_ids), pa.string()),
                "pos": pa.array(range(len(request_ids)), pa.int64()),
            }
        )
        sql = f"""SELECT {cols(schema.names, "p")} FROM predictions p
                  JOIN (SELECT request_id, min(pos) AS pos FROM wanted GROUP BY request_id) w
                  USING (request_id) ORDER BY w.pos"""

        def go(con: duckdb.DuckDBPyConnection) -> pa.Table:
            con.register("wanted", wanted)
            return conform(con.sql(sql).to_arrow_table(), schema)

        return self._run(("predictions",), go)

    def known_request_ids(self, request_ids: Sequence[str]) -> set[str]:
        """Which of `request_ids` exist as a prediction or a seed example (labels for anything
        else have nothing to join to)."""
        wanted = pa.table({"request_id": pa.array(list(request_ids), pa.string())})
        sql = """SELECT DISTINCT w.request_id FROM wanted w
                 WHERE EXISTS (SELECT 1 FROM predictions_raw p WHERE p.request_id = w.request_id)
                    OR EXISTS (SELECT 1 FROM seed_raw s WHERE s.request_id = w.request_id)"""

        def go(con: duckdb.DuckDBPyConnection) -> set[str]:
            con.register("wanted", wanted)
            return {row[0] for row in con.execute(sql).fetchall()}

        return self._run(("predictions", "seed"), go)

    def queued_ids(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT request_id FROM queue", {}, "queue")}

    def annotation_ids(self) -> set[int]:
        """Label Studio annotation ids already in the label log (for idempotent sync)."""
        sql = "SELECT DISTINCT ls_annotation_id FROM labels WHERE ls_annotation_id IS NOT NULL"
        return {r[0] for r in self._rows(sql, {}, "labels")}

    def seed_ids(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT request_id FROM seed", {}, "seed")}
