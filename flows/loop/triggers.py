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
from storage.state import read_events, read_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop


def gate_verdicts(loop: Loop) -> tuple[tuple[str, bool], ...]:
    """(challenger, promoted) of every `retrains` event, oldest first: what the back-off and
    the settling rules count (`retrain.trigger_episode`)."""
    out = []
    for event in read_events(loop.home, "retrains"):
        gate = event.get("gate") or {}
        out.append((gate.get("challenger") or "", bool(gate.get("promote"))))
    return tuple(out)


def labels_since_refused(loop: Loop, gates: tuple[tuple[str, bool], ...]) -> int | None:
    """Labeled rows the last challenger's dataset did not hold, when the gate refused it
    (None otherwise: no back-off to count for)."""
    if not loop.cfg.trigger.backoff or not gates or gates[-1][1] or not gates[-1][0]:
        return None
    return new_labels_since(loop, gates[-1][0], loop.queries.labeled_examples())


def evidence(loop: Loop, champion: str) -> TriggerEvidence:
    """The champion's audit outcomes, its confidence at validation and on recent traffic, the
    last drift verdict about it, how much it served, and the gate's past verdicts."""
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
    gates = gate_verdicts(loop)
    seen = (drift.get("cohorts") or {}) if about else {}
    cohorts = tuple(
        (c.name, (seen.get(c.name) or {}).get("confidence"),
         int((seen.get(c.name) or {}).get("rows") or 0), c.confidence_drop)
        for c in loop.cfg.cohorts if c.confidence_drop
    )  # fmt: skip
    return TriggerEvidence(
        audit_correct=correct,
        reference_confidence=None if reference is None else float(reference),
        recent_confidence=conf,
        drift=drift if about else None,
        served=int(served),
        confidence_min_rows=min(100, loop.cfg.drift.window_rows),
        gates=gates,
        labels_since_refused=labels_since_refused(loop, gates),
        cohorts=cohorts,
    )


def evaluate_triggers(loop: Loop, champion: str | None) -> tuple[TriggerDecision, Episode]:
    """Every rule on the champion's evidence, then the drift episode (see
    `retrain.trigger_rules.assess`); with no champion, the bootstrap fires. Returns the
    decision and the episode to store."""
    episode = stored_episode(read_state(loop.home, "trigger_episode"))
    if champion is None:
        return TriggerDecision(
            True, "bootstrap", ("no champion yet: train the first one",), {}
        ), episode
    return assess(loop.cfg.trigger, evidence(loop, champion), episode)


def stored_episode(state: dict | None) -> Episode:
    """The stored episode; keys it does not know (a newer or older writer) are ignored."""
    known = set(Episode.__dataclass_fields__)
    return Episode(**{k: v for k, v in (state or {}).items() if k in known})


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
