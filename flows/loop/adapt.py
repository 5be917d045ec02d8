"""The `label-shift` step of drift-check: re-estimate the class prior of the champion's recent
traffic and record the correction the serving side applies (`retrain.label_shift`).

Why re-score: the logged posteriors are the served ones, already corrected by whatever
weights were in force when each row was served; EM needs the model's raw posteriors, so the
window's logged inputs are scored again by the champion (a forward pass over `window_rows`
rows, the drift check's own cost). Only the champion's own rows count (`model_version` =
the champion): a correction belongs to one version. The registry is written only when the
decision changes (on, off, or weights that moved by more than `WEIGHT_STEP`), so the
routing's history records corrections, not every estimate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from retrain.label_shift import decide
from storage.state import write_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

#: weights that moved less than this (each class) leave the served correction as it is
WEIGHT_STEP = 0.05


def recent_inputs(loop: Loop, champion: str, rows: int) -> list[bytes]:
    """The logged inputs of the champion's newest `rows` rows (rows without one left out)."""
    out: list[bytes] = []
    for batch in loop.queries.window_batches(
        rows, role="champion", model_version=champion, columns=("input",)
    ):
        out += [b for b in batch.column("input").to_pylist() if b is not None]
    return out


def changed(old: list[float] | None, new: list[float] | None) -> bool:
    """Whether a new decision differs enough from the served one to be written.

    >>> changed(None, None), changed([1.0, 1.0], [1.01, 0.99]), changed([1.0, 1.0], None)
    (False, False, True)
    """
    if old is None or new is None:
        return (old is None) != (new is None)
    return len(old) != len(new) or float(np.max(np.abs(np.subtract(old, new)))) > WEIGHT_STEP


def adapt(loop: Loop) -> dict:
    """Estimate, decide, and (when the decision changed) record it in the registry for the
    champion. Returns `{status, champion, rows, shift, prior, weights, reason, written}`."""
    rules = loop.cfg.label_shift
    champion = loop.registry.get("champion")
    now = datetime.now(UTC).isoformat()
    if champion is None:
        return {"status": "waiting", "champion": None, "reason": "no champion yet", "ts": now}
    train_prior = loop.registry.meta(champion).get("train_prior")
    if not train_prior:
        result = {"status": "skipped", "champion": champion, "ts": now,
                  "reason": f"model {champion} has no train_prior in its meta (trained before "
                            "label-shift correction existed): retrain to get one"}  # fmt: skip
        write_state(loop.home, "label_shift", result)
        return result
    inputs = recent_inputs(loop, champion, rules.window_rows)
    probs = (
        np.asarray(loop.predictor(champion)(loop.decode_inputs(inputs)))
        if len(inputs) >= rules.min_rows
        else np.zeros((len(inputs), len(train_prior)))
    )
    decision = decide(probs, train_prior, rules)
    served = (loop.registry.priors().get(champion) or {}).get("weights")
    written = changed(served, decision.weights)
    if written:
        correction = None
        if decision.weights is not None:
            correction = {"weights": decision.weights, "prior": decision.prior,
                          "train_prior": decision.train_prior, "shift": decision.shift,
                          "rows": decision.rows}  # fmt: skip
        loop.registry.set_prior(champion, correction, reason=decision.reason)
    result = {
        "status": "corrected" if decision.weights is not None else "raw",
        "champion": champion,
        "rows": decision.rows,
        "shift": decision.shift,
        "prior": decision.prior,
        "weights": decision.weights,
        "reason": decision.reason,
        "written": written,
        "ts": now,
    }
    write_state(loop.home, "label_shift", result)
    return result
