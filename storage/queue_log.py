"""The labeling queue log: which request ids were sent to annotators, and why.

The reason matters downstream: only `audit` rows (a random share) give unbiased accuracy;
`uncertainty` rows are the hard cases curation picked on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa

from storage.home import DataHome, StorageError
from storage.parquet_parts import write_partitioned
from storage.queries import Queries
from storage.schemas import QUEUE_SCHEMA

__all__ = ["QUEUE_SCHEMA", "REASONS", "QueueLog"]

#: feedback: a user's thumbs-down, no label; random: a pick of curation strategy "random" (a
#: uniform draw like the audit share, so unbiased too, but it trains: only `audit` is eval)
REASONS = ("uncertainty", "audit", "random", "feedback")
LIKE_PREFIX = "like:"  # `like:<request_id>`: a neighbour of a known failure (curate --like)
COHORT_PREFIX = "cohort:"  # `cohort:<name>`: an uncertainty pick of a cohort's quota


def _per_row(values: Sequence | None, n: int, name: str) -> list:
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise StorageError(f"{name} has {len(values)} values for {n} request_ids: pass one per id")
    return values


class QueueLog:
    """Appends queue entries; an id already queued is never queued twice."""

    def __init__(self, home: DataHome, queries: Queries | None = None) -> None:
        self.home = home
        self.queries = queries  # a reader to reuse (its database), else one per call

    def queued_ids(self) -> set[str]:
        return (self.queries or Queries(self.home)).queued_ids()

    def append(
        self,
        request_ids: Sequence[str],
        reasons: str | Sequence[str],
        ls_task_ids: Sequence[int | None] | None = None,
        scores: Sequence[float | None] | None = None,
        ts: datetime | None = None,
    ) -> int:
        """Queue `request_ids` (a single `reasons` string applies to all); skip ids already
        queued or repeated in this call; return how many were written."""
        ids = list(request_ids)
        n = len(ids)
        reasons = [reasons] * n if isinstance(reasons, str) else _per_row(reasons, n, "reasons")
        task_ids = _per_row(ls_task_ids, n, "ls_task_ids")
        scores = _per_row(scores, n, "scores")
        ts = ts or datetime.now(UTC)
        if ts.tzinfo is None:
            raise StorageError("ts is naive: pass an aware datetime (datetime.now(timezone.utc))")
        for rid, reason, task in zip(ids, reasons, task_ids, strict=True):
            if not isinstance(rid, str) or not rid.strip():
                raise StorageError(f"request_id {rid!r} is empty: pass the prediction's request id")
            like = isinstance(reason, str) and any(
                reason.startswith(p) and len(reason) > len(p) for p in (LIKE_PREFIX, COHORT_PREFIX)
            )
            if reason not in REASONS and not like:
                raise StorageError(
                    f"reason {reason!r} for request_id {rid!r} is unknown: use one of {list(REASONS)} "
                    "or like:<request_id> or cohort:<name>"
                )
            if task is not None and (not isinstance(task, int) or isinstance(task, bool)):
                raise StorageError(f"ls_task_id for request_id {rid!r} is {task!r}: pass an int")
        seen = self.queued_ids() if n else set()
        rows = []
        for rid, reason, task, score in zip(ids, reasons, task_ids, scores, strict=True):
            if rid in seen:
                continue
            seen.add(rid)
            score = None if score is None else float(score)
            rows.append({"request_id": rid, "reason": reason, "score": score,
                         "ls_task_id": task, "ts": ts})  # fmt: skip
        if not rows:
            return 0
        write_partitioned(pa.Table.from_pylist(rows, schema=QUEUE_SCHEMA), self.home.queue, "ts")
        return len(rows)
