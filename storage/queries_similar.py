"""Similarity search over the prediction log: the logged rows nearest to one row, by cosine
over `features`, computed inside DuckDB (`list_cosine_similarity`), for `curate --like`.

Why in DuckDB and over the whole log: a known failure's neighbours may be anywhere in the
log, and the log may be millions of rows; only the `k` best (request id, similarity) leave
the database. Only champion-role rows that a labeler could be sent are candidates (not
queued, not labeled, with something to show: the same rules as curation's candidates).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from storage.home import StorageError
from storage.log_views import first_per_request

SHOWABLE = {
    None: "TRUE",
    "input": '"input" IS NOT NULL',
    "input_or_uri": '"input" IS NOT NULL OR input_uri IS NOT NULL',
}
NEIGHBOURS_SCHEMA = pa.schema([("request_id", pa.string()), ("score", pa.float64())])


def nearest(queries, request_id: str, k: int, shown: str | None = None) -> pa.Table:
    """The `k` rows most similar to `request_id` (cosine over `features`, highest first,
    ties to the smaller request id), as NEIGHBOURS_SCHEMA (`score` = the similarity).

    `queries` is a `storage.queries.Queries`; `shown` as in `ranked_candidates`. An id that is
    not in the prediction log is a StorageError naming it.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise StorageError(f"k = {k!r}: pass how many neighbours to find, 1 or more")
    if shown not in SHOWABLE:
        raise StorageError(f"shown = {shown!r}: use one of {list(SHOWABLE)}")
    keys = first_per_request(f"request_id, role, features, ({SHOWABLE[shown]}) AS showable")
    target_sql = f"SELECT features FROM ({keys}) WHERE request_id = $rid"
    sql = f"""
        WITH target AS ({target_sql}),
        rows AS (SELECT * FROM ({keys}) WHERE role = 'champion' AND showable
                 AND request_id <> $rid),
        candidates AS (
          SELECT * FROM rows r
          WHERE NOT EXISTS (SELECT 1 FROM queue_raw q WHERE q.request_id = r.request_id)
            AND NOT EXISTS (SELECT 1 FROM labels_raw l WHERE l.request_id = r.request_id)
        ),
        scored AS (
          SELECT c.request_id,
                 list_cosine_similarity(c.features::DOUBLE[], t.features::DOUBLE[]) AS score
          FROM candidates c, target t
        )
        SELECT request_id, score FROM scored WHERE score IS NOT NULL AND NOT isnan(score)
        ORDER BY score DESC, request_id LIMIT $k"""

    def go(con: duckdb.DuckDBPyConnection) -> pa.Table:
        found = con.execute(target_sql, {"rid": request_id}).fetchall()
        if not found:
            raise StorageError(
                f"request_id {request_id!r} is not in the prediction log: pass the id of a "
                "logged prediction (`loopwright status` counts them; log-predictions adds some)"
            )
        if found[0][0] is None or not len(found[0][0]):
            raise StorageError(f"request_id {request_id!r} has no features logged to compare")
        table = con.sql(sql, params={"rid": request_id, "k": k}).to_arrow_table()
        return table.cast(NEIGHBOURS_SCHEMA)

    return queries._run(("predictions", "queue", "labels"), go)
