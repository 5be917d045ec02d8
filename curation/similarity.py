"""Similarity-based curation: send people the rows that look like a known failure.

Why: one failure a person found (a user's complaint, a bad prediction seen in a review) is
rarely alone; its nearest neighbours in feature space are the cheapest next labels to
confirm a failure mode and to fix it. The search runs in DuckDB
(`storage.queries_similar.nearest`); this module says what the picks are: reason
`like:<request_id>` (so the queue log and Label Studio say which failure they resemble),
score = the cosine similarity. `cosine_nearest` is the same rule on a matrix, in memory.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from storage.log_views import PICKS_SCHEMA

LIKE = "like:"


def like_reason(request_id: str) -> str:
    """The queue reason of a neighbour of `request_id`.

    >>> like_reason("r42")
    'like:r42'
    """
    if not isinstance(request_id, str) or not request_id.strip():
        raise ValueError(f"--like {request_id!r}: pass the request id of a logged prediction")
    return LIKE + request_id


def like_picks(neighbours: pa.Table, request_id: str) -> pa.Table:
    """`nearest(...)` rows (request_id, score) as curation picks (PICKS_SCHEMA), nearest first.

    >>> t = pa.table({"request_id": ["b", "c"], "score": [0.9, 0.5]})
    >>> like_picks(t, "a").to_pylist()[0]
    {'request_id': 'b', 'reason': 'like:a', 'score': 0.9}
    """
    n = neighbours.num_rows
    return pa.table(
        {
            "request_id": neighbours.column("request_id").cast(pa.string()),
            "reason": pa.array([like_reason(request_id)] * n, pa.string()),
            "score": neighbours.column("score").cast(pa.float64()),
        },
        schema=PICKS_SCHEMA,
    ).replace_schema_metadata({"eligible": str(n)})


def cosine_nearest(target: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row index, cosine similarity) of the `k` rows most similar to `target`, highest first,
    ties to the smaller index; rows of norm 0 are left out (their cosine is undefined).

    >>> cosine_nearest(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [2.0, 0.1], [1.0, 1.0]]), 2)
    [(1, 0.9988), (2, 0.7071)]
    """
    t = np.asarray(target, float)
    x = np.asarray(rows, float)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(t)
    ok = np.flatnonzero(norms > 0)
    sims = (x[ok] @ t) / norms[ok]
    order = sorted(range(len(ok)), key=lambda i: (-sims[i], ok[i]))[:k]
    return [(int(ok[i]), round(float(sims[i]), 4)) for i in order]
