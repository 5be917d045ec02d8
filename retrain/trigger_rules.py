"""`[trigger]`: when the loop retrains, as one pure function of the champion's evidence.

Why apart from the evidence: the Prefect flow reads the evidence from the logs and the
registry, the engine and the benchmark read it the same way, and `assess` decides; so every
driver fires on the same numbers, and a test hands `assess` evidence made by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from retrain.trigger_episode import (
    absorb_gates,
    backoff_labels,
    drift_onset,
    failing,
    onset,
    settle_reason,
    settled_decisions,
)
from retrain.triggers import (
    Episode,
    TriggerDecision,
    closed,
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
    settle_refusals: int = 3  # refusals in a row after a promotion that settle; 0 = off
    settle_on_accuracy: bool = True  # or: a promoted champion's audit accuracy is good enough
    backoff: bool = True  # a refused retrain raises the labels the next one needs
    backoff_factor: float = 2.0  # the next retrain needs min_labels * factor^refusals new labels...
    backoff_max_labels: int = 320  # ...at most this many

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
        for key in ("min_labels", "window_labels", "every_rows", "settle_refusals",
                    "backoff_max_labels"):  # fmt: skip
            if int(getattr(self, key)) != getattr(self, key):
                raise ValueError(f"[trigger] {key} = {getattr(self, key)!r}: use a whole number")
        if self.min_labels < 1:
            raise ValueError(
                f"[trigger] min_labels = {self.min_labels}: use 1 or more audit labels, e.g. 20"
            )
        if self.backoff_factor < 1:
            raise ValueError(
                f"[trigger] backoff_factor = {self.backoff_factor!r} must be at least 1: use e.g. "
                "2 (each refused retrain doubles the labels the next needs), or backoff = false"
            )
        if self.backoff_max_labels < self.min_labels:
            raise ValueError(
                f"[trigger] backoff_max_labels = {self.backoff_max_labels} is below min_labels = "
                f"{self.min_labels}: raise it (e.g. 16 * min_labels), or set backoff = false"
            )


@dataclass(frozen=True)
class TriggerEvidence:
    """What the rules look at, gathered by the caller for the serving champion.

    `audit_correct`: one bool per audit label of the newest `window_labels` rows;
    `reference_confidence`: the champion's mean confidence at validation (registry meta);
    `recent_confidence`: its confidence on recent traffic (`[drift] window_rows` rows);
    `drift`: the last drift verdict, only if it is about this champion and its status is ok
    or drift; `served`: predictions of the champion; `confidence_min_rows`: fewer recent rows
    than this and the confidence rules wait. `gates`: (challenger, promoted) of every
    `retrains` event, oldest first; `labels_since_refused`: labeled rows the last refused
    challenger's dataset did not contain (None: the last retrain was not refused).
    """

    audit_correct: np.ndarray
    reference_confidence: float | None
    recent_confidence: np.ndarray
    drift: dict | None
    served: int
    confidence_min_rows: int
    gates: tuple[tuple[str, bool], ...] = ()
    labels_since_refused: int | None = None
    #: (name, mean confidence or None, rows, confidence_drop rule) of each `[[cohort]]` with
    #: a rule, from the last drift verdict about this champion
    cohorts: tuple[tuple[str, float | None, int, float], ...] = ()


def assess(
    rules: TriggerRules, evidence: TriggerEvidence, episode: Episode
) -> tuple[TriggerDecision, Episode]:
    """The decision and the episode to store (the caller writes it; assessing changes nothing).

    In order: count the gate verdicts since the last check (`absorb_gates`); a new drift
    onset resets the back-off and a settled state (`drift_onset`); a settled episode judges
    the level rules against the levels it settled at (`settled_decisions`) and stays quiet
    unless one fires; otherwise every rule that is on, combined, then the recovery episode
    (`recovery_step`), which ends on evidence (`settle_reason`); last, the back-off: after
    refused retrains a firing rule waits for `backoff_labels` new labels.

    >>> ev = TriggerEvidence(np.array([True] * 14 + [False] * 6), 0.95, np.full(200, 0.9),
    ...                      None, 500, 100)
    >>> d, e = assess(TriggerRules(), ev, Episode())
    >>> d.fire, d.kind, e.open, e.baseline
    (True, 'performance', True, 0.95)
    >>> assess(TriggerRules(on_performance=False), ev, Episode())[0].kind
    'none'
    """
    ep = absorb_gates(episode, evidence.gates)
    recent = np.asarray(evidence.recent_confidence)  # its own dtype: the mean as logged
    mean = float(recent.mean()) if len(recent) else 0.0
    reference = evidence.reference_confidence
    correct = np.asarray(evidence.audit_correct, dtype=bool)
    min_rows = evidence.confidence_min_rows
    drift = evidence.drift if rules.on_drift else None
    new_onset = drift_onset(ep, drift)
    if new_onset is not None and drift is not None:
        ep = onset(ep, drift)
    elif drift is not None and ep.onset_share is not None and drift.get("dataset_drift"):
        # the largest share seen in the episode: a later onset must go beyond it (the share
        # of correlated columns wanders; measured 0.52..0.85 within one stable phase)
        ep = replace(ep, onset_share=max(ep.onset_share, float(drift["drift_share"])))
    if ep.settled is not None:
        checks = settled_decisions(ep.settled, correct, mean, len(recent), min_rows,
                                   rules.min_labels, rules.confidence_drop)  # fmt: skip
        if rules.every_rows:
            checks.append(periodic_trigger(int(evidence.served), rules.every_rows))
        fired = combine(checks)
        if not fired.fire:
            why = f"settled: {ep.settled['reason']}"
            return TriggerDecision(False, "settled", (why, *fired.reasons), fired.numbers), ep
        if fired.kind == "periodic":  # the schedule, not a change: the episode stays settled
            return backed_off(rules, evidence, fired, ep)
        ep = replace(closed(ep), refusals=0, refused=None)  # a change: a new episode
        return backed_off(rules, evidence, *recovery_step(
            ep, fired, reference, mean, len(recent), rules.recovery_drop, min_rows=min_rows))  # fmt: skip
    decision, ep = recovery_step(
        ep,
        combine(level_decisions(rules, evidence, correct, mean, len(recent))),
        reference,
        mean,
        len(recent),
        rules.recovery_drop,
        min_rows=min_rows,
    )
    if not ep.open:  # no episode (e.g. recovery off, or no baseline): nothing to remember
        ep = closed(ep)
    if new_onset is None:
        why = settle_reason(
            ep,
            correct,
            rules.accuracy_threshold,
            rules.min_labels,
            rules.settle_refusals,
            rules.settle_on_accuracy,
        )
        if why is not None:
            hits = int(np.count_nonzero(correct))
            settled = {
                "accuracy": hits / len(correct) if len(correct) >= rules.min_labels else None,
                "confidence": mean if len(recent) >= min_rows else reference,
                "reason": why,
            }
            ep = replace(ep, open=False, baseline=None, promoted=False, settled=settled)
            numbers = {**decision.numbers, "settled": settled}
            return TriggerDecision(False, "settled", (f"settled: {why}", *decision.reasons),
                                   numbers), ep  # fmt: skip
        return backed_off(rules, evidence, decision, ep)
    return decision, ep


def level_decisions(rules, evidence, correct, mean, n_recent) -> list[TriggerDecision]:
    """Every rule that is on, on the champion's evidence (before the episode)."""
    reference = evidence.reference_confidence
    decisions: list[TriggerDecision] = []
    if rules.on_performance:
        decisions.append(performance_trigger(correct, rules.accuracy_threshold, rules.min_labels))
    if rules.on_confidence and reference is not None:
        decisions.append(
            confidence_trigger(
                float(reference),
                mean,
                n_recent,
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
    if evidence.cohorts and reference is not None:
        decisions.append(
            cohort_trigger(evidence.cohorts, float(reference), evidence.confidence_min_rows)
        )
    return decisions


def cohort_trigger(
    cohorts: Sequence[tuple[str, float | None, int, float]], reference: float, min_rows: int
) -> TriggerDecision:
    """Fire when a cohort's mean confidence is more than its `confidence_drop` below the
    champion's validation confidence, on `min_rows` of its rows or more (kind "cohort").

    >>> d = cohort_trigger([("night", 0.70, 50, 0.1), ("day", 0.88, 400, 0.1)], 0.9, 20)
    >>> d.fire, d.kind, d.reasons[0]
    (True, 'cohort', 'cohort night: mean confidence 0.700 is 0.200 below the champion 0.900 (rule 0.1, 50 rows)')
    """
    fired, why, numbers = False, [], {}
    for name, conf, rows, rule in cohorts:
        if conf is None or rows < min_rows:
            why.append(f"cohort {name}: {rows} recent rows ({min_rows} needed): waiting")
            continue
        drop = reference - float(conf)
        numbers[name] = {"confidence": float(conf), "rows": int(rows), "drop": round(drop, 4)}
        hit = drop > rule
        fired |= hit
        text = (f"cohort {name}: mean confidence {conf:.3f} is {drop:.3f} below the champion "
                f"{reference:.3f} (rule {rule}, {rows} rows)")  # fmt: skip
        if hit:
            why.insert(0, text)
        else:
            why.append(text + ": within the rule")
    return TriggerDecision(fired, "cohort" if fired else "none", tuple(why), numbers)


def backed_off(
    rules: TriggerRules, evidence: TriggerEvidence, decision: TriggerDecision, ep: Episode
) -> tuple[TriggerDecision, Episode]:
    """A firing decision after refused retrains waits until the labels since the last refused
    challenger reach `backoff_labels` (the numbers say how many, under "backoff"), unless the
    champion is failing (`failing`): then every retrain the labels allow is worth it."""
    have = evidence.labels_since_refused
    if not (decision.fire and rules.backoff and ep.refusals and have is not None):
        return decision, ep
    down = failing(evidence.audit_correct, rules.accuracy_threshold, rules.min_labels)
    if down is not None:
        skipped = {"refusals": ep.refusals, "refused": ep.refused, "labels": have,
                   "needed": None, "skipped": down}  # fmt: skip
        return replace(decision, numbers={**decision.numbers, "backoff": skipped}), ep
    need = backoff_labels(ep.refusals, rules.min_labels, rules.backoff_factor,
                          rules.backoff_max_labels)  # fmt: skip
    numbers = {**decision.numbers, "backoff": {"refusals": ep.refusals, "refused": ep.refused,
                                               "labels": have, "needed": need}}  # fmt: skip
    if have >= need:
        return replace(decision, numbers=numbers), ep
    text = (
        f"backing off: {ep.refusals} refused retrain(s) in a row, {have} labels since "
        f"{ep.refused} was refused, {need} needed ([trigger] backoff_factor, backoff_max_labels)"
    )
    return TriggerDecision(False, decision.kind, (text, *decision.reasons), numbers), ep
