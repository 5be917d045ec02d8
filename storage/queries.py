"""Questions the loop asks of its logs, answered by DuckDB over the Parquet parts.

Every answer is an Arrow table in a documented schema, or a number; the views and their
deduplication rules are in `log_views.py`, the curation and window queries (a mixin of
`Queries`) in `queries_curation.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from storage.duckdb_conn import SharedDuckDB
from storage.home import DataHome
from storage.kept_connections import KeptConnections
from storage.log_views import (
    AUDIT_SCHEMA,
    FIRST_LOGGED,
    LABELED_SCHEMA,
    LATEST_LABEL,
    PICKS_SCHEMA,
    QUEUED_SCHEMA,
    check_rows,
    choose_window,
    cols,
    conform,
    connect,
    fetch_rows,
    first_per_request,
    prediction_schema,
)
from storage.part_cache import PartCache
from storage.queries_curation import CurationQueries
from storage.settings import StorageSettings

__all__ = ["AUDIT_SCHEMA", "LABELED_SCHEMA", "PICKS_SCHEMA", "QUEUED_SCHEMA", "Queries"]


# A part can vanish between listing the files and opening them (compaction deletes merged
# parts after a grace period); the query is then run again on a fresh listing.
ATTEMPTS = 5


def vanished(err: duckdb.Error) -> bool:
    text = str(err)
    return isinstance(err, duckdb.IOException) and (
        "No files found" in text or "No such file" in text
    )


class Queries(CurationQueries):
    """`Queries(home).candidates(2000)`: read-only. Keeps one in-memory DuckDB database
    (`duckdb_conn.SharedDuckDB`, under `settings`: `[storage]` memory limit, threads) and
    opens one connection to it per call, with views over a fresh listing of the parts (a
    writer may add parts between calls). `close()` frees the database (else garbage
    collection does)."""

    def __init__(
        self, home: DataHome, settings: StorageSettings | None = None, cache_parts: bool = False
    ) -> None:
        self.home = home
        self.settings = settings or StorageSettings()
        self._db: SharedDuckDB | None = None
        #: decoded parts kept between calls (`storage.part_cache`: memory grows with the log),
        #: and with them one connection per set of logs a query reads
        self.parts: PartCache | None = PartCache() if cache_parts else None
        self._kept = KeptConnections(self) if cache_parts else None

    @property
    def database(self) -> SharedDuckDB:
        """The database every call connects to (a new one if `settings` was replaced)."""
        if self._db is None or self._db.settings is not self.settings:
            if self._kept is not None:
                self._kept.forget()  # connections of the database replaced
            self._db = SharedDuckDB(self.settings)
        return self._db

    def close(self) -> None:
        if self._kept is not None:
            self._kept.forget()
        if self._db is not None:
            self._db.close()

    def _run(self, sources: Sequence[str], fn):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                kept = self._kept.connection(sources) if self._kept is not None else None
                if kept is not None:
                    try:
                        return fn(kept)
                    except BaseException:
                        self._kept.forget()  # a failed statement may leave it half-done
                        raise
                con = connect(self.home, *sources, database=self.database, parts=self.parts)
                try:
                    return fn(con)
                finally:
                    con.close()
            except duckdb.FatalException:
                self.database.reset()  # DuckDB invalidated the database: the next call reopens
                raise
            except duckdb.Error as err:
                if attempt == ATTEMPTS or not vanished(err):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

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
        keys = first_per_request("request_id, model_version")
        sql = f"SELECT count(*) FROM ({keys}) WHERE model_version = $mv"
        return int(self._rows(sql, {"mv": model_version}, "predictions")[0][0])

    def _window(self, n_rows: int, model_version: str | None, columns, newest: bool) -> pa.Table:
        """The newest (oldest) `n_rows` deduplicated rows, chosen by `choose_window` in
        memory that grows with `n_rows`, not with the log; then their wide columns."""
        check_rows(n_rows, "n_rows")
        schema = prediction_schema(columns)

        def go(con: duckdb.DuckDBPyConnection) -> pa.Table:
            where = "$mv IS NULL OR model_version = $mv"
            choose_window(con, n_rows, newest, where, {"mv": model_version})
            return conform(con.sql(fetch_rows(schema.names, "chosen")).to_arrow_table(), schema)

        return self._run(("predictions",), go)

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
              QUALIFY row_number() OVER (PARTITION BY request_id, annotator
                ORDER BY ts DESC, file_index DESC, file_row_number DESC) = 1
            ),
            agreement AS (
              SELECT request_id, count(DISTINCT annotator) AS n_annotators,
                     count(DISTINCT label) > 1 AS disagreement
              FROM per_annotator GROUP BY request_id
            ),
            logged AS (  -- the `predictions` dedup rule, on labeled ids only (not the whole log)
              SELECT request_id, ts, features, "input", attrs FROM predictions_raw r
              WHERE r.request_id IN (SELECT request_id FROM latest)
              QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1
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
            logged AS (  -- the `predictions` dedup rule, on labeled ids only
              SELECT request_id, ts, model_version, pred FROM predictions_raw r
              WHERE r.request_id IN (SELECT request_id FROM latest)
              QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1
            ),
            audited AS (
              SELECT p.request_id, p.ts, p.model_version, p.pred, l.label,
                     p.pred = l.label AS correct
              FROM logged p JOIN latest l USING (request_id)
              WHERE EXISTS (SELECT 1 FROM queue q
                            WHERE q.request_id = p.request_id
                              AND q.reason IN ('audit', 'random'))
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
              QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1
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
        sql = f"""WITH logged AS (  -- the `predictions` dedup rule, on the wanted ids only
                    SELECT * FROM predictions_raw r
                    WHERE r.request_id IN (SELECT request_id FROM wanted)
                    QUALIFY row_number() OVER
                      (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1
                  )
                  SELECT {cols(schema.names, "p")} FROM logged p
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
        # two semi joins, each with the wanted ids as its hash table (an OR of EXISTS would
        # build one over the whole log)
        sql = """SELECT request_id FROM wanted w SEMI JOIN predictions_raw p USING (request_id)
                 UNION
                 SELECT request_id FROM wanted w SEMI JOIN seed_raw s USING (request_id)"""

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
