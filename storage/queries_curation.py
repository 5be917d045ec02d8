"""The questions curation and drift checks ask of the prediction log: which rows may still
go to annotators, which to pick (decided inside DuckDB), and a window streamed in bounded
memory.

A mixin of `storage.queries.Queries` (it uses its `home`, `settings`, `database`, `_run`
and `_table`), so that `Queries` keeps one API while each module holds one concern.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from storage.duckdb_conn import open_duckdb
from storage.home import StorageError
from storage.log_views import (
    CANDIDATE_COLUMNS,
    FIRST_LOGGED,
    SCORE_SQL,
    check_rows,
    choose_window,
    chosen_rows,
    cols,
    fetch_rows,
    first_per_request,
    log_files,
    prediction_schema,
    read_parts,
)

# Which rows a labeler can be shown, for `ranked_candidates(shown=...)`.
SHOWN_SQL = {
    None: "TRUE",
    "input": 'p."input" IS NOT NULL',
    "input_or_uri": 'p."input" IS NOT NULL OR p.input_uri IS NOT NULL',
}


class CurationQueries:
    """Curation and window queries of `Queries`; not used on its own."""

    def candidates(self, window_rows: int) -> pa.Table:
        """Among the latest `window_rows` champion predictions, those neither queued nor labeled:
        what curation may still send to annotators."""
        check_rows(window_rows, "window_rows")
        keys = first_per_request("request_id, ts, role, file_index, file_row_number")
        sql = f"""
            WITH recent AS (
              SELECT request_id, file_index, file_row_number, ts FROM ({keys})
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
        memory_limit_mb: int | None = None,
        role: str | None = None,
        sample_rows: int | None = None,
        seed: int = 0,
        start: datetime | None = None,
        end: datetime | None = None,
        exclude_model_version: str | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The same rows as `recent_predictions` (or `first_predictions` when `newest` is
        False), streamed as Arrow batches in no particular order, in bounded memory: what a
        drift check over millions of rows reads (`curation.drift.compute_drift_streaming`).

        The window is chosen on the small key columns first (dedup by request id, newest or
        oldest `n_rows` (None: all), of one `role` if given, with `start` <= ts < `end` and
        a model version other than `exclude_model_version` if given), then only its rows'
        wide columns are read, from the Parquet row groups inside the window's time range.
        `sample_rows` keeps a seeded uniform sample of the window (ordered by a hash of the
        request id, as the curation audit draw). DuckDB may spill to a temporary folder
        beyond `memory_limit_mb` (default: `[storage] memory_limit_mb`, as every reader).
        """
        check_rows(n_rows, "n_rows", allow_none=True)
        check_rows(sample_rows, "sample_rows", allow_none=True)
        check_rows(batch_rows, "batch_rows")
        check_rows(memory_limit_mb, "memory_limit_mb", allow_none=True)
        schema = prediction_schema(columns)
        order = "DESC" if newest else "ASC"
        files = log_files(self.home.predictions)  # live parts: never a merged file and its sources
        if not files or n_rows == 0:
            return
        own = memory_limit_mb is not None  # a limit of its own: a database of its own
        if own:
            settings = dataclasses.replace(self.settings, memory_limit_mb=int(memory_limit_mb))
            con = open_duckdb(settings)
            spill = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        else:  # a connection to the reader's database (its temp tables are this call's)
            con = self.database.connect()
        try:
            # one fixed file list, so that file_index means the same file in both statements
            # even if a writer adds a part in between
            parts = getattr(self, "parts", None)  # decoded parts kept by the reader, if any
            cached = parts.raw_table("predictions", files) if parts is not None else None
            if cached is not None:
                con.register("predictions_raw", cached)
            else:
                con.execute(
                    "CREATE TEMP VIEW predictions_raw AS SELECT *, file_index FROM "
                    + read_parts(files)
                )
            where = """($mv IS NULL OR model_version = $mv) AND ($role IS NULL OR role = $role)
                    AND ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts < $end)
                    AND ($xmv IS NULL OR model_version IS DISTINCT FROM $xmv)"""
            filters = {"mv": model_version, "role": role, "start": start, "end": end}
            filters["xmv"] = exclude_model_version
            columns = "request_id, ts, model_version, role, file_index, file_row_number"
            if n_rows is None:
                keys = first_per_request(columns)
            else:  # the window first, in memory of its size (`choose_window`), not the log's
                choose_window(con, n_rows, newest, where, filters)
                keys = chosen_rows(columns)
            sample = (
                ""
                if sample_rows is None
                else "ORDER BY hash(request_id || $salt), request_id LIMIT $k"
            )
            limit = "" if n_rows is None else "LIMIT $n"
            con.execute(
                f"""CREATE TEMP TABLE win AS SELECT fi, frn, ts FROM (
                  SELECT file_index AS fi, file_row_number AS frn, ts, request_id FROM ({keys})
                  WHERE {where}
                  ORDER BY ts {order}, request_id {order} {limit}
                ) {sample}""",
                filters
                | ({} if n_rows is None else {"n": n_rows})
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
            if own:
                shutil.rmtree(spill, ignore_errors=True)

    def ranked_candidates(
        self,
        window_rows: int | None,
        strategy: str,
        budget: int,
        seed: int = 0,
        audit_share: float = 0.2,
        shown: str | None = None,
        pool: int = 0,
        stratum: str = "",
    ) -> pa.Table:
        """The two short lists curation picks from, computed inside DuckDB over
        `candidates(window_rows)` (`None`: every champion row), without moving the candidates
        into Python: what `curation.sampling.pick` takes.

        Rows: kind 'draw' (the first `budget` eligible rows in audit order: a seeded hash of
        the request id, so the draw is uniform and does not depend on row order), kind 'top'
        (the `budget` highest uncertainty scores, ties to the smaller request id), one kind
        'counts' row; columns request_id, score, draw, n (eligible rows) and, with `shown`,
        hidden (candidates left out). Scores come from the logged `confidence`, `margin` and
        `entropy` columns (`SCORE_SQL`). `audit_share` is only checked here: `pick` splits.

        `shown` keeps only rows a labeler can be shown: "input" (an `input` was logged) or
        "input_or_uri" (an `input` or an `input_uri`); None keeps every row. Only the
        candidates' own rows are read for it (late, inside their time range).

        `pool` > 0 adds kind 'pool' rows: the `pool` most uncertain eligible rows (per
        stratum when `stratum` is "pred" or "attrs.<key>"), with their `stratum` and
        `features` (read late, for those rows only): what `curation.diversity` spreads the
        uncertainty picks over. Without it the result has no `stratum`/`features` columns.
        """
        check_rows(window_rows, "window_rows", allow_none=True)
        check_pick_args(budget, strategy, audit_share)
        if shown not in SHOWN_SQL:
            raise StorageError(f"shown = {shown!r}: use one of {list(SHOWN_SQL)}")
        check_rows(pool, "pool")
        group = stratum_sql(stratum)
        columns = "request_id, ts, role, confidence, margin, entropy, file_index, file_row_number"
        if pool and group != "NULL":
            columns += ", pred" if stratum == "pred" else ", attrs"
        # a window is chosen first (`choose_window`), in memory of the window's size
        keys = first_per_request(columns) if window_rows is None else chosen_rows(columns)
        visible = (
            "candidates"
            if shown is None
            else f"""(SELECT c.* FROM candidates c SEMI JOIN predictions_raw p
                  ON p.file_index = c.file_index AND p.file_row_number = c.file_row_number
                  AND p.ts = c.ts AND ({SHOWN_SQL[shown]}))"""
        )
        hidden = "" if shown is None else ", hidden"
        pool_keys, no_pool, pool_rows = "", "", ""
        if pool:  # the pool's wide column (features) is read for its own rows only
            pool_keys = f", ({group})::VARCHAR AS stratum, file_index, file_row_number, ts"
            no_pool = ", NULL::VARCHAR AS stratum, NULL::FLOAT[] AS features"
            per = "" if group == "NULL" else "PARTITION BY stratum "
            pool_rows = f"""
            UNION ALL
            SELECT 'pool', e.request_id, e.score, e.draw, n{hidden}, e.stratum, p.features
            FROM (SELECT * FROM eligible
                  QUALIFY row_number() OVER ({per}ORDER BY score DESC, request_id) <= $pool) e
            JOIN predictions_raw p ON p.file_index = e.file_index
              AND p.file_row_number = e.file_row_number AND p.ts = e.ts, counts"""
        sql = f"""
            WITH recent AS (
              SELECT * FROM ({keys}) WHERE role = 'champion'
            ),
            candidates AS (
              SELECT * FROM recent r
              WHERE NOT EXISTS (SELECT 1 FROM queue_raw q WHERE q.request_id = r.request_id)
                AND NOT EXISTS (SELECT 1 FROM labels_raw l WHERE l.request_id = r.request_id)
            ),
            eligible AS (
              SELECT request_id, {SCORE_SQL[strategy]} AS score,
                     hash(request_id || $salt) AS draw{pool_keys}
              FROM {visible} v
            ),
            counts AS (
              SELECT (SELECT count(*) FROM eligible) AS n,
                     (SELECT count(*) FROM candidates) - (SELECT count(*) FROM eligible) AS hidden
            ),
            audit AS (SELECT * FROM eligible ORDER BY draw, request_id LIMIT $budget),
            top AS (SELECT * FROM eligible ORDER BY score DESC, request_id LIMIT $budget)
            SELECT 'draw' AS kind, request_id, score, draw, n{hidden}{no_pool} FROM audit, counts
            UNION ALL
            SELECT 'top', request_id, score, draw, n{hidden}{no_pool} FROM top, counts
            UNION ALL
            SELECT 'counts', NULL, NULL, NULL, n{hidden}{no_pool} FROM counts{pool_rows}"""
        params = {"budget": int(budget), "salt": f"#{int(seed)}"} | ({"pool": pool} if pool else {})

        def go(con: duckdb.DuckDBPyConnection) -> pa.Table:
            if window_rows is not None:
                choose_window(con, window_rows, True, "role = 'champion'")
            return con.sql(sql, params=params).to_arrow_table()

        return self._run(("predictions", "queue", "labels"), go)

    def members(self, where: str, request_ids: Sequence[str]) -> set[str]:
        """Which of `request_ids` satisfy the SQL predicate `where` on their logged row (the
        first logged, as every reader sees it): a cohort's members (`curation.cohorts`)."""
        if not request_ids:
            return set()
        wanted = pa.table({"request_id": pa.array(sorted(set(request_ids)), pa.string())})
        sql = f"""SELECT request_id FROM (
                    SELECT * FROM predictions_raw r
                    WHERE r.request_id IN (SELECT request_id FROM wanted)
                    QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1
                  ) WHERE ({where})"""

        def go(con: duckdb.DuckDBPyConnection) -> set[str]:
            con.register("wanted", wanted)
            return {r[0] for r in con.execute(sql).fetchall()}

        return self._run(("predictions",), go)

    def cohort_top(
        self, window_rows: int, strategy: str, n: int, where: str, shown: str | None = None
    ) -> pa.Table:
        """The `n` most uncertain eligible rows (as `ranked_candidates` counts them: champion,
        not queued, not labeled, shown) of the latest `window_rows` that satisfy `where`:
        what a cohort's curation quota picks from. Columns request_id, score."""
        check_rows(window_rows, "window_rows")
        check_pick_args(n, strategy, 0.0)
        if shown not in SHOWN_SQL:
            raise StorageError(f"shown = {shown!r}: use one of {list(SHOWN_SQL)}")
        sql = f"""
            WITH recent AS (SELECT p.* FROM predictions_raw p SEMI JOIN chosen c
                   ON p.file_index = c.file_index AND p.file_row_number = c.file_row_number
                   AND p.ts = c.ts),
            eligible AS (
              SELECT p.request_id, {SCORE_SQL[strategy]} AS score FROM recent p
              WHERE p.role = 'champion' AND ({SHOWN_SQL[shown]}) AND ({where})
                AND NOT EXISTS (SELECT 1 FROM queue_raw q WHERE q.request_id = p.request_id)
                AND NOT EXISTS (SELECT 1 FROM labels_raw l WHERE l.request_id = p.request_id)
            )
            SELECT request_id, score FROM eligible ORDER BY score DESC, request_id LIMIT $n"""

        def go(con: duckdb.DuckDBPyConnection) -> pa.Table:
            choose_window(con, window_rows, True, "role = 'champion'")
            return con.sql(sql, params={"n": int(n)}).to_arrow_table()

        return self._run(("predictions", "queue", "labels"), go)


def stratum_sql(stratum: str) -> str:
    """The SQL of a `[curation] stratify` value over the candidate rows ("NULL": no strata).

    >>> stratum_sql("pred"), stratum_sql("attrs.device"), stratum_sql("")
    ('pred', "attrs['device']", 'NULL')
    """
    if stratum == "":
        return "NULL"
    if stratum == "pred":
        return "pred"
    key = stratum.removeprefix("attrs.")
    if stratum.startswith("attrs.") and key and "'" not in key:
        return f"attrs['{key}']"
    raise StorageError(f'stratum = {stratum!r}: use "", "pred" or "attrs.<key>"')


def check_pick_args(budget: int, strategy: str, audit_share: float) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise StorageError(f"budget = {budget!r}: pass a whole number of samples (0 or more)")
    if strategy not in SCORE_SQL:
        raise StorageError(f"strategy = {strategy!r} is unknown: use one of {list(SCORE_SQL)}")
    if not 0.0 <= audit_share <= 1.0:
        raise StorageError(f"audit_share = {audit_share} must be within [0, 1] (0.2 = 20%)")
