"""Should `retrain` run? The champion's evidence, read from the logs, for the trigger rules.

The rules themselves are `retrain.trigger_rules.assess` (`[trigger]`); this module only
gathers what they look at. Reading the triggers never changes state: `evaluate_triggers`
returns the drift episode to store, and the retrain stage writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from retrain.trigger_rules import TriggerEvidence, assess
from retrain.triggers import Episode, TriggerDecision
from storage.state import read_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop


def evidence(loop: Loop, champion: str) -> TriggerEvidence:
    """The champion's audit outcomes, its confidence at validation and on recent traffic, the
    last drift verdict about it, and how much it served."""
    cfg = loop.cfg.trigger
    outcomes = loop.queries.audit_outcomes(cfg.window_labels, model_version=champion)
    correct = np.asarray(outcomes.column("correct").to_pylist(), dtype=bool)
    reference = loop.registry.meta(champion).get("reference_confidence")
    recent = loop.queries.recent_predictions(
        loop.cfg.drift.window_rows, model_version=champion, columns=["confidence"]
    )
    conf = recent.column("confidence").to_numpy() if recent.num_rows else np.zeros(0)
    drift = read_state(loop.home, "last_drift") or {}
    about = drift.get("status") in {"ok", "drift"} and drift.get("champion") == champion
    served = loop.queries.count_predictions(model_version=champion) if cfg.every_rows else 0
    return TriggerEvidence(
        audit_correct=correct,
        reference_confidence=None if reference is None else float(reference),
        recent_confidence=conf,
        drift=drift if about else None,
        served=int(served),
        confidence_min_rows=min(100, loop.cfg.drift.window_rows),
    )


def evaluate_triggers(loop: Loop, champion: str | None) -> tuple[TriggerDecision, Episode]:
    """Every rule on the champion's evidence, then the drift episode (see `recovery_step`);
    with no champion, the bootstrap fires. Returns the decision and the episode to store."""
    episode = Episode(**(read_state(loop.home, "trigger_episode") or {}))
    if champion is None:
        return TriggerDecision(
            True, "bootstrap", ("no champion yet: train the first one",), {}
        ), episode
    return assess(loop.cfg.trigger, evidence(loop, champion), episode)


def new_labels_since(loop: Loop, champion: str | None, labeled: pa.Table) -> int:
    """Labeled rows the champion's own dataset did not contain: retraining without them is moot."""
    if champion is None:
        return labeled.num_rows
    from storage.datasets import load_dataset

    ds_id = loop.registry.meta(champion).get("dataset_version")
    seen: set[str] = set()
    if ds_id:
        ds = load_dataset(loop.home, ds_id)
        seen = set(ds.train_ids) | set(ds.test_ids)
    return sum(1 for r in labeled.column("request_id").to_pylist() if r not in seen)
