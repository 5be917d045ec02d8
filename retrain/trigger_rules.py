"""`[trigger]`: when the loop retrains, as one pure function of the champion's evidence.

Why apart from the evidence: the Prefect flow reads the evidence from the logs and the
registry, the engine and the benchmark read it the same way, and `assess` decides; so every
driver fires on the same numbers, and a test hands `assess` evidence made by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

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


@dataclass(frozen=True)
class TriggerRules:
    """The `[trigger]` section (see loopwright.toml for the meaning of each key)."""

    accuracy_threshold: float = 0.85
    min_labels: int = 20
    window_labels: int = 60  # audit labels of the most recent rows used for the estimate
    on_drift: bool = True
    confidence_drop: float = 0.1  # label-free: mean confidence below reference by this much
    every_rows: int = 0  # retrain after the champion served this many predictions; 0 disables
    recovery_drop: float = 0.05  # after a trigger, keep retraining until confidence is within this of pre-drift; 0 = off
    on_performance: bool = True  # audit accuracy below accuracy_threshold fires
    on_confidence: bool = True  # mean confidence confidence_drop below the validation level fires

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise ValueError(f"[trigger] {f.name} = {value!r}: use true or false")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(
                    f"[trigger] {f.name} = {value!r} must be a number >= 0: use 0 or more"
                )
        if not 0 < self.accuracy_threshold <= 1:
            raise ValueError(
                f"[trigger] accuracy_threshold = {self.accuracy_threshold!r} must lie in (0, 1]: "
                "use an accuracy, e.g. 0.85 (or on_performance = false to turn the rule off)"
            )
        if not 0 <= self.recovery_drop <= 1:
            raise ValueError(
                f"[trigger] recovery_drop = {self.recovery_drop!r} must lie between 0 and 1: "
                "use a confidence gap, e.g. 0.05, or 0 to turn recovery off"
            )
        for key in ("min_labels", "window_labels", "every_rows"):
            if int(getattr(self, key)) != getattr(self, key):
                raise ValueError(f"[trigger] {key} = {getattr(self, key)!r}: use a whole number")
        if self.min_labels < 1:
            raise ValueError(
                f"[trigger] min_labels = {self.min_labels}: use 1 or more audit labels, e.g. 20"
            )


@dataclass(frozen=True)
class TriggerEvidence:
    """What the rules look at, gathered by the caller for the serving champion.

    `audit_correct`: one bool per audit label of the newest `window_labels` rows;
    `reference_confidence`: the champion's mean confidence at validation (registry meta);
    `recent_confidence`: its confidence on recent traffic (`[drift] window_rows` rows);
    `drift`: the last drift verdict, only if it is about this champion and its status is ok
    or drift; `served`: predictions of the champion; `confidence_min_rows`: fewer recent rows
    than this and the confidence rules wait.
    """

    audit_correct: np.ndarray
    reference_confidence: float | None
    recent_confidence: np.ndarray
    drift: dict | None
    served: int
    confidence_min_rows: int


def assess(
    rules: TriggerRules, evidence: TriggerEvidence, episode: Episode
) -> tuple[TriggerDecision, Episode]:
    """Every rule that is on, combined, then the drift episode (`recovery_step`): the
    decision and the episode to store (the caller writes it; assessing changes nothing).

    >>> ev = TriggerEvidence(np.array([True] * 14 + [False] * 6), 0.95, np.full(200, 0.9),
    ...                      None, 500, 100)
    >>> d, e = assess(TriggerRules(), ev, Episode())
    >>> d.fire, d.kind, e
    (True, 'performance', Episode(open=True, baseline=0.95))
    >>> assess(TriggerRules(on_performance=False), ev, Episode())[0].kind
    'none'
    """
    recent = np.asarray(evidence.recent_confidence)  # its own dtype: the mean as logged
    mean = float(recent.mean()) if len(recent) else 0.0
    reference = evidence.reference_confidence
    decisions: list[TriggerDecision] = []
    if rules.on_performance:
        correct = np.asarray(evidence.audit_correct, dtype=bool)
        decisions.append(performance_trigger(correct, rules.accuracy_threshold, rules.min_labels))
    if rules.on_confidence and reference is not None:
        decisions.append(
            confidence_trigger(
                float(reference),
                mean,
                len(recent),
                rules.confidence_drop,
                min_rows=evidence.confidence_min_rows,
            )
        )
    drift = evidence.drift
    if rules.on_drift and drift is not None:
        decisions.append(
            drift_trigger(
                bool(drift["dataset_drift"]),
                float(drift["drift_share"]),
                float(drift["confidence_drop"]),
                rules.confidence_drop,
            )
        )
    if rules.every_rows:
        decisions.append(periodic_trigger(int(evidence.served), rules.every_rows))
    return recovery_step(
        episode,
        combine(decisions),
        reference,
        mean,
        len(recent),
        rules.recovery_drop,
        min_rows=evidence.confidence_min_rows,
    )
