"""The drift check with `[drift] reference = "window"`: the log compared with an earlier
window of itself, for a model served elsewhere (no loopwright champion to re-score anything).

Why: someone with their own serving stack logs predictions (`log-predictions`) and wants to
know when today's traffic no longer looks like a period they trust. The reference is a
window of the prediction log, chosen by time and/or model version; features, predicted
class and confidence are taken as logged. Which rows (champion role only, as always):

* `reference_end` set: reference = a seeded sample of at most `reference_rows` rows with
  `reference_start` (if set) <= ts < `reference_end` (and of `reference_model_version`, if
  set); current = the latest `window_rows` rows from `reference_end` on;
* only `reference_model_version` set: reference = a sample of that version's rows; current =
  the latest `window_rows` rows of every other version;
* nothing set: reference = the first `reference_rows` rows of the log; current = the latest
  `window_rows` rows after them.

Until both windows are there the verdict waits, saying what to log or which key to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.drift import ModelOutputs
from curation.drift_rules import reference_times, traffic_end
from storage.schemas import PREDICTION_SCHEMA

LOGGED = ("ts", "features", "pred", "confidence")
KEYS = "[drift] reference_start / reference_end / reference_model_version"


@dataclass(frozen=True)
class Windows:
    """The reference rows (at most `reference_rows`), the current window as
    `Queries.window_batches` arguments, the reference in words, or why there is no verdict."""

    reference: pa.Table | None
    current: dict = field(default_factory=dict)
    what: str = ""
    waiting: str | None = None
    advice: str = "end the reference earlier (" + KEYS.removeprefix("[drift] ") + ")"


def as_table(batches) -> pa.Table:
    batches = list(batches)
    if not batches:
        return pa.schema([PREDICTION_SCHEMA.field(c) for c in LOGGED]).empty_table()
    return pa.Table.from_batches(batches).sort_by("ts")


def describe(start: datetime | None, end: datetime | None, version: str | None) -> str:
    """The reference window in words.

    >>> from datetime import UTC
    >>> describe(None, datetime(2026, 5, 8, tzinfo=UTC), "v7")
    'rows of model_version v7 before 2026-05-08T00:00:00+00:00'
    """
    parts = ["rows"]
    if version:
        parts.append(f"of model_version {version}")
    if start and end:
        parts.append(f"between {start.isoformat()} and {end.isoformat()}")
    elif end:
        parts.append(f"before {end.isoformat()}")
    return " ".join(parts)


def windows(loop) -> Windows:
    """Choose the reference rows and the current window (see the module doc)."""
    cfg = loop.cfg.drift
    start, end = reference_times(cfg)
    version = cfg.reference_model_version or None
    q = loop.queries
    if end is None and version is None:
        first = as_table(q.window_batches(cfg.reference_rows, newest=False, role="champion",
                                          columns=LOGGED))  # fmt: skip
        what = f"the first {cfg.reference_rows} rows of the log"
        if first.num_rows < cfg.reference_rows:
            return Windows(None, what=what, waiting=(
                f"the log has {first.num_rows} champion rows; the reference is its first "
                f"{cfg.reference_rows} ([drift] reference_rows) and the current window the "
                f"latest {cfg.window_rows} after them: log more predictions, or bound the "
                "reference with [drift] reference_end or reference_model_version"))  # fmt: skip
        last = pc.max(first.column("ts")).as_py()
        advice = "lower [drift] reference_rows or window_rows"
        return Windows(first, {"start": last + timedelta(microseconds=1)}, what, advice=advice)
    ref = as_table(q.window_batches(None, model_version=version, start=start, end=end,
                                    role="champion", columns=LOGGED,
                                    sample_rows=cfg.reference_rows))  # fmt: skip
    what = describe(start, end, version)
    if ref.num_rows == 0:
        return Windows(None, what=what, waiting=(
            f"reference window has 0 rows ({what}): log predictions there, or change {KEYS}"
        ))  # fmt: skip
    current = {"start": end} if end is not None else {"exclude_model_version": version}
    return Windows(ref, current, what)


def champion_traffic(loop, champion: str) -> tuple[pa.Table, str] | None:
    """With `[drift] reference = "champion"` and `champion_reference = "traffic"`: the newest
    `reference_rows` champion-role rows served before the end of the traffic the champion's
    dataset holds (`curation.drift_rules.traffic_end`; seed rows are not traffic), with their inputs (the champion
    re-scores them), and the reference in words. None (use its training rows) when asked for
    its training rows, when its dataset holds no served row (a first model on seed rows), or
    when fewer than min(reference_rows, window_rows) such rows exist."""
    from flows.loop.card import rows_for
    from retrain.dataset_policy import SEED_SOURCE
    from storage.datasets import load_dataset

    cfg = loop.cfg.drift
    ds_id = loop.registry.meta(champion).get("dataset_version")
    if cfg.champion_reference != "traffic" or not ds_id:
        return None
    ds = load_dataset(loop.home, ds_id)
    held = rows_for(loop.queries.labeled_examples(), (*ds.train_ids, *ds.test_ids))
    served = pc.fill_null(pc.not_equal(held.column("source"), SEED_SOURCE), True)
    end = traffic_end(held.filter(served).column("ts").to_pylist())
    if end is None:
        return None
    columns = ("request_id", "ts", "features", "input")
    ref = as_table(loop.queries.window_batches(cfg.reference_rows, end=end, role="champion",
                                               columns=columns))  # fmt: skip
    if "input" in ref.column_names:
        ref = ref.filter(pc.is_valid(ref.column("input")))
    if "input" not in ref.column_names or ref.num_rows < min(cfg.reference_rows, cfg.window_rows):
        return None
    what = f"the {ref.num_rows} rows served before {end.isoformat()} (the newest in {ds_id})"
    return ref, what


def current_what(w: Windows) -> str:
    """The current window in words (for waiting reasons)."""
    if "start" in w.current:
        return f"from {w.current['start'].isoformat()} on"
    return f"of model versions other than {w.current['exclude_model_version']}"


def logged_outputs(table: pa.Table, classes) -> ModelOutputs:
    """The logged predicted classes (as indices into `classes`) and confidences."""
    codes = pc.index_in(table.column("pred"), value_set=pa.array(list(classes), pa.string()))
    if codes.null_count:
        bad = sorted(set(pc.filter(table.column("pred"), pc.is_null(codes)).to_pylist()))[:5]
        raise ValueError(
            f"the log holds predicted classes {bad} that are not in the task's classes "
            f"{list(classes)}: set [task] classes to your model's class names"
        )
    conf = table.column("confidence").to_numpy(zero_copy_only=False).astype(np.float64)
    return ModelOutputs(codes.to_numpy(zero_copy_only=False).astype(np.int64), conf)
