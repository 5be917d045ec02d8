"""Which labeled rows a retrain learns from.

Why a policy: after drift, old examples can teach the wrong thing ("all" keeps the clean
seed set and everything since; "window" keeps only the most recent labels, so the model
follows the present distribution). Fine-tuning from the champion is the other lever; it
is `training.fit(init_state=...)`, orthogonal to which rows are chosen here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

POLICIES = ("all", "window")
SEED_SOURCE = "seed"  # the label log's `source` for the first champion's examples


def select_rows(table: pa.Table, policy: Literal["all", "window"], window_rows: int) -> pa.Table:
    """Rows to train on. Needs columns `ts` and `source` (label source: seed, labelstudio, ...).

    - "all": every row, seed rows included (window_rows is ignored).
    - "window": the `window_rows` most recent non-seed rows by `ts`, returned oldest first.

    >>> import datetime as dt
    >>> t = pa.table({"ts": [dt.datetime(2026, 1, d) for d in (1, 3, 2, 4)],
    ...               "source": ["seed", "labelstudio", "labelstudio", "labelstudio"],
    ...               "request_id": ["s", "c", "b", "d"]})
    >>> select_rows(t, "window", 2)["request_id"].to_pylist()
    ['c', 'd']
    >>> select_rows(t, "all", 2).num_rows
    4
    """
    if policy not in POLICIES:
        raise ValueError(f"dataset policy {policy!r} is unknown: use one of {list(POLICIES)}")
    if policy == "all":
        return table
    missing = [c for c in ("ts", "source") if c not in table.column_names]
    if missing:
        raise ValueError(
            f"table has no column {missing[0]!r} (has {table.column_names}): "
            "pass labeled examples with `ts` and the label `source`"
        )
    if window_rows < 1:
        raise ValueError(f"window_rows = {window_rows}: a window keeps at least 1 row")
    not_seed = pc.not_equal(pc.fill_null(table["source"], ""), SEED_SOURCE)
    recent = table.filter(not_seed)
    # Arrow's sort is stable: rows with equal ts keep table order, so the choice is reproducible
    newest = recent.take(pc.sort_indices(recent, sort_keys=[("ts", "descending")])[:window_rows])
    return newest.take(pc.sort_indices(newest, sort_keys=[("ts", "ascending")]))


def recency_weights(
    ts: np.ndarray, is_seed: np.ndarray, recent_rows: int, factor: float
) -> np.ndarray:
    """Sampling weight per training row: `factor` for the `recent_rows` newest non-seed rows
    by `ts`, 1 for the rest (for `training.fit(weights=...)`).

    Why: with policy "all" the model keeps the past, but the few hundred labels from the
    drifted present are a small share of each epoch; up-weighting them makes a fine-tune
    follow the present without dropping the past ("window" drops it). factor 1 = uniform.

    >>> recency_weights(np.array([0, 5, 3, 9]), np.array([True, False, False, False]), 2, 4.0).tolist()
    [1.0, 4.0, 1.0, 4.0]
    """
    if factor < 1:
        raise ValueError(f"recent_weight = {factor}: use 1 (uniform) or more")
    w = np.ones(len(ts), dtype=np.float64)
    if factor == 1 or recent_rows < 1:
        return w
    candidates = np.flatnonzero(~np.asarray(is_seed, dtype=bool))
    order = candidates[np.argsort(np.asarray(ts)[candidates], kind="stable")]
    w[order[-recent_rows:]] = factor
    return w


#: what a labeled row is, for the eval-set rule (see `eval_sides`)
ROW_KINDS = ("seed", "audit", "feedback", "other")


def row_kind(source: str | None, audit: bool) -> str:
    """Seed (the first champion's rows), audit (the random share of the curation queue),
    feedback (a user's label: never eval, docs/contracts.md "Feedback") or other (picked on
    purpose: uncertainty, like:<id>).

    >>> row_kind("seed", False), row_kind("labelstudio", True), row_kind("feedback", True), row_kind(None, False)
    ('seed', 'audit', 'feedback', 'other')
    """
    if source == SEED_SOURCE:
        return "seed"
    if source == "feedback":
        return "feedback"
    return "audit" if audit else "other"


def eval_sides(
    keys: list[str],
    kinds: list[str],
    decided: dict[str, str],
    in_hash_test: list[bool],
    audit_to_eval: bool,
) -> tuple[list[str], dict[str, str]]:
    """Each row's side ("eval", "train" or "out") and the side of every group seen first now.

    `keys` are the rows' split keys (their group, or their own id), `decided` the side each
    group already has in the parent eval set (a group's side never changes: once a row is
    eval it stays eval, and a source trained on is never judged on). A new group goes to
    eval when one of its rows is an audit label (the unbiased sample; with `audit_to_eval`),
    or when its hash says test (`in_hash_test`) and it has a row that is not feedback: seed
    rows (the first champion needs an eval set) and purposeful picks (with only the audit
    share, a 20-label batch adds 4 eval rows: too few to show a gain within a few batches).
    Any other new group trains. Rows of an eval group are eval, except feedback rows: "out"
    (in neither: they may not be eval, and training on them would put their source on both
    sides).

    >>> eval_sides(["a", "g:1", "g:1", "s", "u"], ["audit", "other", "audit", "seed", "other"],
    ...            {"u": "train"}, [False, False, False, True, True], True)
    (['eval', 'eval', 'eval', 'eval', 'train'], {'a': 'eval', 'g:1': 'eval', 's': 'eval'})
    """
    if not len(keys) == len(kinds) == len(in_hash_test):
        raise ValueError("keys, kinds and in_hash_test need one value per row")
    unknown = sorted(set(kinds) - set(ROW_KINDS))
    if unknown:
        raise ValueError(f"row kind {unknown[0]!r} is unknown: use one of {list(ROW_KINDS)}")
    new: dict[str, str] = {}
    for key, kind, test in zip(keys, kinds, in_hash_test, strict=True):
        if key in decided:
            continue
        eval_now = (audit_to_eval and kind == "audit") or (kind != "feedback" and test)
        if eval_now:
            new[key] = "eval"
        else:
            new.setdefault(key, "train")
    side = {**decided, **new}
    out = []
    for key, kind in zip(keys, kinds, strict=True):
        if side[key] == "eval":
            out.append("out" if kind == "feedback" else "eval")
        else:
            out.append("train")
    return out, new
