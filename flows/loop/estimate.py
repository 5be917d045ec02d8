"""The label-free performance estimate of a drift check (`evaluation.estimate`), fed from the
log: what the drift verdict carries as `estimate`.

Which rows, and why:
* calibration, `[estimate] calibrate_on = "held_out"` (default): the latest labeled rows the
  champion did not train on (its dataset's test split, and labels that came after it),
  re-scored by it; never feedback (users answer when something looks wrong: a selection on
  correctness itself), never its training rows (a calibration on them is overconfident).
  `"audit"`: the champion's own audit rows (`Queries.audit_outcomes(model_version=...)`,
  the random share, an unbiased sample) with the confidence it logged; rows it logged
  itself came after it was trained. A champion promoted a moment ago has none yet, and on
  the benchmark's streams it is replaced before it has `[estimate] min_audit` of them.
* window: the latest `[drift] window_rows` champion-role rows that this champion logged
  (its logged confidence and slice `attrs`), the same window the drift check judges, minus
  rows an earlier champion served.

With no champion (a model watched but served elsewhere) every version's rows are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from evaluation.estimate import estimate_accuracy

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

EMPTY = {"accuracy": None, "low": None, "high": None, "n_audit": 0, "n_rows": 0,
         "sd_sampling": None, "by_slice": {}}  # fmt: skip


def _attrs(value) -> dict[str, str]:
    """A logged `attrs` map as a dict (Arrow gives a list of pairs)."""
    if not value:
        return {}
    return dict(value) if not isinstance(value, dict) else value


def window_rows(loop: Loop, champion: str | None) -> pa.Table:
    batches = list(
        loop.queries.window_batches(
            loop.cfg.drift.window_rows,
            model_version=champion,
            role="champion",
            columns=("request_id", "confidence", "attrs"),
        )
    )
    if not batches:
        return pa.table({"request_id": pa.array([], pa.string()),
                         "confidence": pa.array([], pa.float32()), "attrs": pa.array([])})  # fmt: skip
    return pa.Table.from_batches(batches)


def own_audit(loop: Loop, champion: str | None, n: int) -> list[tuple[float, bool]]:
    """(logged confidence, correct) of the champion's latest `n` audit rows."""
    audit = loop.queries.audit_outcomes(n, model_version=champion)
    ids = audit.column("request_id").to_pylist()
    logged = loop.queries.prediction_frame(ids, columns=["request_id", "confidence"])
    conf = dict(zip(logged.column("request_id").to_pylist(),
                    logged.column("confidence").to_pylist(), strict=True))  # fmt: skip
    correct = audit.column("correct").to_pylist()
    return [(conf[r], bool(c)) for r, c in zip(ids, correct, strict=True)
            if conf.get(r) is not None]  # fmt: skip


def held_out(loop: Loop, champion: str, n: int) -> list[tuple[float, bool]]:
    """(confidence, correct) of the champion re-scoring the latest `n` labeled rows it did not
    train on (its dataset's test split and labels since), feedback left out (users answer
    when something looks wrong: selected on correctness). Uncertainty picks stay in: they
    were selected on an earlier model's uncertainty, which is close to selecting on this
    one's confidence, the variable the calibration conditions on (an assumption)."""
    import numpy as np
    import pyarrow.compute as pc

    from storage.datasets import load_dataset

    ds_id = loop.registry.meta(champion).get("dataset_version")
    trained = set(load_dataset(loop.home, ds_id).train_ids) if ds_id else set()
    rows = loop.queries.labeled_examples()
    seen = pa.array(sorted(trained), pa.string())
    keep = pc.and_(
        pc.invert(pc.is_in(rows.column("request_id"), value_set=seen)),
        pc.and_(pc.is_valid(rows.column("input")),
                pc.not_equal(pc.fill_null(rows.column("source"), ""), "feedback")),
    )  # fmt: skip
    rows = rows.filter(keep)
    rows = rows.slice(max(0, rows.num_rows - n))  # ascending by ts: the latest n
    if rows.num_rows == 0:
        return []
    probs = loop.served_predictor(champion)(loop.decode_inputs(rows.column("input").to_pylist()))
    classes = np.asarray(loop.task.classes)
    pred = classes[probs.argmax(axis=1)]
    labels = np.asarray(rows.column("label").to_pylist())
    return list(zip(probs.max(axis=1).tolist(), (pred == labels).tolist(), strict=True))


def estimate(loop: Loop, champion: str | None) -> dict:
    """The `estimate` of a drift verdict: accuracy, low, high, n_audit, n_rows, by_slice,
    reason (None when a number was made, else why not)."""
    rules = getattr(loop.cfg, "estimate", None)
    if rules is None or not rules.enabled:
        return {**EMPTY, "reason": "[estimate] enabled = false"}
    if rules.calibrate_on == "held_out" and champion is not None:
        pairs = held_out(loop, champion, rules.audit_rows)
    else:
        pairs = own_audit(loop, champion, rules.audit_rows)
    window = window_rows(loop, champion)
    from flows.loop.cohorts import as_slices  # cohorts are slices `cohort:<name>` = "in"

    attrs = as_slices(
        loop,
        [_attrs(a) for a in window.column("attrs").to_pylist()],
        window.column("request_id").to_pylist(),
    )
    return estimate_accuracy(
        [p[0] for p in pairs],
        [bool(p[1]) for p in pairs],
        [float(c) for c in window.column("confidence").to_pylist()],
        attrs,
        rules,
    )


def accuracy_of(verdict: dict) -> float | None:
    """The estimated accuracy a drift verdict carries (None: none made, or no verdict).

    >>> accuracy_of({"estimate": {"accuracy": 0.91}}), accuracy_of({"status": "waiting"})
    (0.91, None)
    """
    return ((verdict or {}).get("estimate") or {}).get("accuracy")


def estimate_line(drift: dict | None) -> str:
    """The drift check's label-free accuracy estimate as one line of the `status` table.

    >>> estimate_line({"estimate": {"accuracy": 0.912, "low": 0.88, "high": 0.94,
    ...                             "n_audit": 40, "n_rows": 400, "by_slice": {}}})
    '0.912 (0.880 .. 0.940) from 40 audit labels over 400 rows'
    >>> estimate_line({"estimate": {"accuracy": None, "reason": "3 audit labels"}})
    'none: 3 audit labels'
    """
    est = (drift or {}).get("estimate")
    if not est:
        return "none yet"
    if est.get("accuracy") is None:
        return f"none: {est.get('reason')}"
    interval = f" ({est['low']:.3f} .. {est['high']:.3f})" if est.get("low") is not None else ""
    worst = sorted(est.get("by_slice", {}).items(), key=lambda kv: kv[1]["accuracy"])[:1]
    slices = "".join(f"; lowest slice {k} {v['accuracy']:.3f}" for k, v in worst)
    return (
        f"{est['accuracy']:.3f}{interval} from {est['n_audit']} audit labels over "
        f"{est['n_rows']} rows{slices}"
    )
