"""What a drift check says about each `[[cohort]]`: its share of traffic, its confidence and
its feature drift, now against the window before; and the members of a cohort among given
rows (the estimate, the report card and the gate read cohorts as slices `cohort:<name>`).

Why the window before, not the champion's training rows: a cohort is a predicate over the
prediction log (attrs, features, confidence), and training rows that never passed through
the log (the seed set) cannot be tested against it; the previous window of the same size is
what the cohort looked like a moment ago, whoever served it. Feature drift is the drift
check's own statistics (`curation.drift.compute_drift`), run on the cohort's rows of both
windows when each has `min_rows` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from curation.cohorts import with_cohorts
from curation.drift import compute_drift

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

COLUMNS = ("request_id", "ts", "features", "pred", "confidence")


def members(loop: Loop, request_ids: Sequence[str]) -> dict[str, set[str]]:
    """Each cohort's members among `request_ids` (by the predicate on their logged rows)."""
    return {c.name: loop.queries.members(c.where, request_ids) for c in loop.cfg.cohorts}


def as_slices(loop: Loop, attrs: Sequence[dict | None], request_ids: Sequence[str]) -> list[dict]:
    """`attrs` with each row's cohorts added as slice keys (`cohort:<name>` = "in")."""
    if not loop.cfg.cohorts:
        return [dict(a or {}) for a in attrs]
    return with_cohorts(attrs, request_ids, members(loop, request_ids))


def _window(loop: Loop, champion: str | None, end=None) -> pa.Table:
    batches = list(
        loop.queries.window_batches(
            loop.cfg.drift.window_rows, model_version=champion if end is None else None,
            role="champion", columns=COLUMNS, end=end,
        )
    )  # fmt: skip
    if not batches:
        return pa.table({c: pa.array([]) for c in COLUMNS})
    return pa.Table.from_batches(batches)


def _side(table: pa.Table, ids: set[str], classes: Sequence[str]) -> dict:
    keep = np.array([r in ids for r in table.column("request_id").to_pylist()], dtype=bool)
    sub = table.filter(pa.array(keep)) if table.num_rows else table
    conf = np.asarray(sub.column("confidence").to_pylist(), dtype=float) if sub.num_rows else []
    index = {str(c): i for i, c in enumerate(classes)}
    return {
        "rows": int(sub.num_rows),
        "share": round(sub.num_rows / table.num_rows, 4) if table.num_rows else None,
        "confidence": round(float(np.mean(conf)), 4) if len(conf) else None,
        "x": np.asarray(sub.column("features").to_pylist(), dtype=float) if sub.num_rows else None,
        "pred": np.array([index.get(str(p), 0) for p in sub.column("pred").to_pylist()]),
        "conf": np.asarray(conf, dtype=float),
    }


def cohort_report(loop: Loop, champion: str | None, estimate: dict | None = None) -> dict:
    """`{name: {rows, share, confidence, reference_rows, reference_share,
    reference_confidence, drift_share, dataset_drift, estimate}}` for every cohort; `{}`
    when none is configured. `estimate`: the verdict's, whose `by_slice` holds the cohorts'."""
    if not loop.cfg.cohorts:
        return {}
    rules, classes = loop.cfg.drift, loop.task.classes
    min_rows = loop.cfg.estimate.min_slice_rows
    cur = _window(loop, champion)
    if cur.num_rows == 0:
        return {c.name: {"rows": 0, "reason": "no recent rows"} for c in loop.cfg.cohorts}
    first = min(cur.column("ts").to_pylist())
    ref = _window(loop, None, end=first)
    ids = cur.column("request_id").to_pylist() + ref.column("request_id").to_pylist()
    found = members(loop, ids)
    by_slice = (estimate or {}).get("by_slice") or {}
    out = {}
    for c in loop.cfg.cohorts:
        now, before = _side(cur, found[c.name], classes), _side(ref, found[c.name], classes)
        item = {
            "rows": now["rows"], "share": now["share"], "confidence": now["confidence"],
            "reference_rows": before["rows"], "reference_share": before["share"],
            "reference_confidence": before["confidence"],
            "drift_share": None, "dataset_drift": None,
            "estimate": (by_slice.get(f"{c.slice_key}=in") or {}).get("accuracy"),
        }  # fmt: skip
        if now["rows"] >= min_rows and before["rows"] >= min_rows:
            v = compute_drift(
                before["x"], now["x"], before["pred"], now["pred"], before["conf"], now["conf"],
                len(classes), rules.numeric_threshold, rules.categorical_threshold,
                rules.drift_share, p_value=rules.p_value, workers=1,
            )  # fmt: skip
            item["drift_share"] = round(float(v.drift_share), 4)
            item["dataset_drift"] = bool(v.dataset_drift)
        else:
            item["reason"] = (
                f"{now['rows']} rows now, {before['rows']} before ({min_rows} each needed, "
                "[estimate] min_slice_rows): no drift statistics"
            )
        out[c.name] = item
    return out
