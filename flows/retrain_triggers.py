"""Should `retrain` run? Every trigger rule on the champion's evidence, read from the logs.

Reading the triggers never changes state: `evaluate_triggers` returns the drift episode
to store and the flow writes it (see `flows/retrain.py`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from flows.runtime import Runtime
from retrain.triggers import (
    Episode,
    TriggerDecision,
    combine,
    confidence_trigger,
    drift_trigger,
    performance_trigger,
    periodic_trigger,
    recovery_step,
)
from storage.state import read_state


def evaluate_triggers(rt: Runtime, champion: str | None) -> tuple[TriggerDecision, Episode]:
    """Every rule on the champion's evidence, then the drift episode (see `recovery_step`).

    Returns the decision and the episode to store; the caller writes it, so that reading
    the triggers never changes state.
    """
    cfg = rt.cfg.trigger
    episode = Episode(**(read_state(rt.home, "trigger_episode") or {}))
    if champion is None:
        return TriggerDecision(
            True, "bootstrap", ("no champion yet: train the first one",), {}
        ), episode
    decisions = []
    outcomes = rt.queries.audit_outcomes(cfg.window_labels, model_version=champion)
    correct = np.asarray(outcomes.column("correct").to_pylist(), dtype=bool)
    decisions.append(performance_trigger(correct, cfg.accuracy_threshold, cfg.min_labels))
    reference = rt.registry.meta(champion).get("reference_confidence")
    recent = rt.queries.recent_predictions(
        rt.cfg.drift.window_rows, model_version=champion, columns=["confidence"]
    )
    conf = recent.column("confidence").to_numpy() if recent.num_rows else np.zeros(0)
    if reference is not None:
        decisions.append(
            confidence_trigger(
                float(reference),
                float(conf.mean()) if len(conf) else 0.0,
                len(conf),
                cfg.confidence_drop,
                min_rows=min(100, rt.cfg.drift.window_rows),
            )
        )
    drift = read_state(rt.home, "last_drift") or {}
    if (
        cfg.on_drift
        and drift.get("status") in {"ok", "drift"}
        and drift.get("champion") == champion
    ):
        decisions.append(
            drift_trigger(
                bool(drift["dataset_drift"]),
                float(drift["drift_share"]),
                float(drift["confidence_drop"]),
                cfg.confidence_drop,
            )
        )
    if cfg.every_rows:
        served = rt.queries.count_predictions(model_version=champion)
        decisions.append(periodic_trigger(served, cfg.every_rows))
    return recovery_step(
        episode,
        combine(decisions),
        reference,
        float(conf.mean()) if len(conf) else 0.0,
        len(conf),
        cfg.recovery_drop,
        min_rows=min(100, rt.cfg.drift.window_rows),
    )


def new_labels_since(rt: Runtime, champion: str | None, labeled: pa.Table) -> int:
    """Labeled rows the champion's own dataset did not contain: retraining without them is moot."""
    if champion is None:
        return labeled.num_rows
    from storage.datasets import load_dataset

    ds_id = rt.registry.meta(champion).get("dataset_version")
    seen: set[str] = set()
    if ds_id:
        ds = load_dataset(rt.home, ds_id)
        seen = set(ds.train_ids) | set(ds.test_ids)
    return sum(1 for r in labeled.column("request_id").to_pylist() if r not in seen)
