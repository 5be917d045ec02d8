"""The online analysis of a rollout step: canary vs champion on the traffic each served.

Why pure: like the gate, the same evidence and rules always give the same decision, so a
rollout can be replayed and audited; the engine stage (`flows/loop/rollout.py`) gathers the
evidence and moves the registry, this module never does.

A step ends in one of three decisions, each with its reasons and numbers:
- rollback: the canary is significantly less accurate on labels (one-sided two-proportion
  z-test, after a minimum sample size), or its error rate or p99 latency is over a limit, or
  its label-free estimate (confidence drop from its own validation level, against the
  champion's drop) is worse by more than a limit, or the step held too often;
- hold: the evidence is not enough to judge (too few predictions or labels in either arm,
  serving stats unreadable, the arms' predicted classes differ more than `max_shift` without
  labels to judge it): never advance without evidence;
- advance: enough evidence and no check failed.
In `ab` mode the split is fixed and the accuracies are compared with the always-valid
sequential test of `evaluation.sequential` on every label since the rollout started:
advance when the canary is significantly better, roll back when worse, else hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from evaluation.sequential import sequential_test

MODES = ("canary", "ab")
DECISIONS = ("advance", "hold", "rollback")


@dataclass(frozen=True)
class RolloutRules:
    """The `[rollout]` section (see loopwright.toml for the meaning of each key)."""

    enabled: bool = False  # true: a gate pass starts a rollout instead of moving champion
    mode: str = "canary"  # canary (stepped weights) | ab (fixed split, sequential test)
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)  # canary traffic, percent; 100 = promote
    min_labels: int = 20  # labeled outcomes (audit + feedback) per arm before accuracy judges
    min_predictions: int = 100  # predictions per arm in a step before anything advances
    alpha: float = 0.05  # significance of the accuracy tests
    max_error_rate: float = 0.01  # canary's share of failed requests (serving stats)
    max_p99_ratio: float = 1.5  # canary p99 latency / champion p99 latency
    max_shift: float = 0.25  # total variation distance of the arms' predicted classes
    max_confidence_gap: float = 0.1  # canary's confidence drop minus the champion's
    max_holds: int = 10  # holds at one step before rolling back (0 = hold until a person acts)
    ab_split: float = 50.0  # ab mode: canary traffic, percent
    ab_effect: float = 0.05  # ab mode: accuracy difference worth detecting (mSPRT tau)
    ab_max_labels: int = 2000  # ab mode: per arm; no difference by then keeps the champion
    # where the rollout reads the serving stats: "" = http://<[serving] host>:<port>/v1/stats,
    # "off" = no server (an in-process driver): errors and latency are not judged
    stats_url: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"[rollout] enabled = {self.enabled!r}: use true or false")
        if self.mode not in MODES:
            raise ValueError(
                f"[rollout] mode = {self.mode!r} is not one of {list(MODES)}: use one of them"
            )
        steps = tuple(self.steps)
        ok = all(_number(s) and 0 < s <= 100 for s in steps)
        if not steps or not ok or list(steps) != sorted(set(steps)) or steps[-1] != 100:
            raise ValueError(
                f"[rollout] steps = {list(steps)!r} must be increasing percentages in (0, 100] "
                "ending at 100: use e.g. [5, 25, 50, 100]"
            )
        object.__setattr__(self, "steps", tuple(float(s) for s in steps))
        for key, least in (("min_labels", 1), ("min_predictions", 1), ("max_holds", 0),
                           ("ab_max_labels", 1)):  # fmt: skip
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"[rollout] {key} = {value!r} must be a whole number >= {least}: "
                    f"use e.g. {getattr(RolloutRules, key)}"
                )
        if not (_number(self.alpha) and 0 < self.alpha < 0.5):
            raise ValueError(f"[rollout] alpha = {self.alpha!r} must lie in (0, 0.5): use 0.05")
        for key, low, high in (("max_error_rate", 0, 1), ("max_shift", 0, 1),
                               ("max_confidence_gap", 0, 1)):  # fmt: skip
            value = getattr(self, key)
            if not (_number(value) and low <= value <= high):
                raise ValueError(
                    f"[rollout] {key} = {value!r} must lie between {low} and {high}: "
                    f"use a share, e.g. {getattr(RolloutRules, key)}"
                )
        if not (_number(self.max_p99_ratio) and self.max_p99_ratio >= 1):
            raise ValueError(
                f"[rollout] max_p99_ratio = {self.max_p99_ratio!r} must be >= 1: use e.g. 1.5 "
                "(the canary may be 50 % slower at p99)"
            )
        if not (_number(self.ab_split) and 0 < self.ab_split < 100):
            raise ValueError(
                f"[rollout] ab_split = {self.ab_split!r} must lie in (0, 100): use e.g. 50"
            )
        url = self.stats_url
        if not isinstance(url, str) or not (url in ("", "off") or url.startswith("http")):
            raise ValueError(
                f'[rollout] stats_url = {url!r} must be "", "off" or an http(s) URL: use '
                '"" (the [serving] endpoint) or e.g. "http://127.0.0.1:8080/v1/stats"'
            )
        if not (_number(self.ab_effect) and 0 < self.ab_effect < 1):
            raise ValueError(
                f"[rollout] ab_effect = {self.ab_effect!r} must lie in (0, 1): use e.g. 0.05"
            )

    @property
    def weights(self) -> tuple[float, ...]:
        """The traffic shares the rollout walks through (`ab`: the split, then 1.0)."""
        if self.mode == "ab":
            return (self.ab_split / 100.0, 1.0)
        return tuple(s / 100.0 for s in self.steps)


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class ArmEvidence:
    """What one arm served in the window. `correct`/`labeled`: outcomes on labels that arrived
    for its rows, audit picks and user feedback only (uncertainty picks are biased toward
    hard rows). `requests`/`errors`/`p99_ms`: the serving stats (None: not available)."""

    predictions: int = 0
    labeled: int = 0
    correct: int = 0
    mean_confidence: float | None = None
    reference_confidence: float | None = None  # the model's mean confidence at validation
    class_counts: Mapping[str, int] = field(default_factory=dict)
    requests: int | None = None
    errors: int | None = None
    p99_ms: float | None = None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labeled if self.labeled else None


@dataclass(frozen=True)
class Evidence:
    """Both arms' evidence for one step. `stats_problem`: why the serving stats could not be
    read (the analysis then holds); `stats_used=False`: the driver has no server (in-process
    benchmark), so errors and latency are not judged. `holds`: holds so far at this step.
    `previous_p`: ab mode's always-valid p-value at the last look."""

    canary: ArmEvidence
    champion: ArmEvidence
    stats_used: bool = True
    stats_problem: str | None = None
    holds: int = 0
    previous_p: float = 1.0


@dataclass(frozen=True)
class Analysis:
    decision: str  # advance | hold | rollback
    reasons: list[str]
    numbers: dict


def two_proportion_z(correct_a: int, n_a: int, correct_b: int, n_b: int) -> tuple[float, float]:
    """(z, one-sided p) of H1: accuracy of a < accuracy of b, pooled two-proportion z-test.

    >>> z, p = two_proportion_z(30, 50, 45, 50)
    >>> round(z, 3), round(p, 5)
    (-3.464, 0.00027)
    """
    pa, pb = correct_a / n_a, correct_b / n_b
    pooled = (correct_a + correct_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 0.5 if pa == pb else (0.0 if pa < pb else 1.0)
    z = (pa - pb) / se
    return z, 0.5 * math.erfc(-z / math.sqrt(2))


def prediction_shift(a: Mapping[str, int], b: Mapping[str, int]) -> float | None:
    """Total variation distance of two predicted-class distributions (0 same, 1 disjoint).

    >>> prediction_shift({"0": 50, "1": 50}, {"0": 80, "1": 20})
    0.3
    """
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return None
    keys = set(a) | set(b)
    return round(0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in keys), 12)


def _drop(arm: ArmEvidence) -> float | None:
    if arm.mean_confidence is None:
        return None
    ref = arm.reference_confidence
    return (ref - arm.mean_confidence) if ref is not None else -arm.mean_confidence


def analyze(rules: RolloutRules, evidence: Evidence) -> Analysis:
    """advance / hold / rollback for one step, with every reason and number behind it."""
    can, champ = evidence.canary, evidence.champion
    rollback: list[str] = []
    hold: list[str] = []
    numbers: dict = {
        "canary_predictions": can.predictions,
        "champion_predictions": champ.predictions,
        "canary_labeled": can.labeled,
        "champion_labeled": champ.labeled,
        "canary_accuracy": can.accuracy,
        "champion_accuracy": champ.accuracy,
        "canary_confidence": can.mean_confidence,
        "champion_confidence": champ.mean_confidence,
    }
    _serving_checks(rules, evidence, numbers, rollback, hold)

    gap = None
    d_can, d_champ = _drop(can), _drop(champ)
    if d_can is not None and d_champ is not None:
        gap = d_can - d_champ
    numbers["confidence_gap"] = gap
    enough_predictions = min(can.predictions, champ.predictions) >= rules.min_predictions
    # labels outrank the label-free estimate: under drift the old champion is often confident
    # and wrong, so a better canary can look "less confident than its validation" by more
    labels_judge = rules.mode == "canary" and min(can.labeled, champ.labeled) >= rules.min_labels
    if (
        gap is not None
        and enough_predictions
        and gap > rules.max_confidence_gap
        and not labels_judge
    ):
        rollback.append(
            f"label-free estimate: canary's confidence fell {gap:.3f} more than the "
            f"champion's from validation (> max_confidence_gap {rules.max_confidence_gap})"
        )
    if not enough_predictions:
        hold.append(
            f"too few predictions: canary {can.predictions}, champion {champ.predictions} "
            f"(< min_predictions {rules.min_predictions} per arm)"
        )
    shift = prediction_shift(can.class_counts, champ.class_counts)
    numbers["shift"] = shift

    enough_labels = min(can.labeled, champ.labeled) >= rules.min_labels
    label_ok = False
    if rules.mode == "ab":
        label_ok = _ab_test(rules, evidence, numbers, rollback, hold)
    elif enough_labels:
        z, p = two_proportion_z(can.correct, can.labeled, champ.correct, champ.labeled)
        numbers.update(z=z, p_value=p)
        if p < rules.alpha:
            rollback.append(
                f"canary less accurate: {can.accuracy:.3f} on {can.labeled} labels vs "
                f"{champ.accuracy:.3f} on {champ.labeled} (one-sided p = {p:.4f} < alpha "
                f"{rules.alpha})"
            )
        else:
            label_ok = True
    else:
        hold.append(
            f"too few labels: canary {can.labeled}, champion {champ.labeled} (< min_labels "
            f"{rules.min_labels} per arm, audit and feedback only)"
        )
    if shift is not None and shift > rules.max_shift and not label_ok:
        hold.append(
            f"predicted classes differ between the arms (shift {shift:.3f} > max_shift "
            f"{rules.max_shift}): labels must judge it"
        )

    limited = rules.mode == "canary" and rules.max_holds  # an A/B test holds until it decides
    if not rollback and hold and limited and evidence.holds + 1 > rules.max_holds:
        rollback.append(
            f"held {evidence.holds + 1} times at this step (> max_holds {rules.max_holds}): "
            + "; ".join(hold)
        )
    if rollback:
        return Analysis("rollback", rollback, numbers)
    if hold:
        return Analysis("hold", hold, numbers)
    reasons = ["no check failed"]
    if "p_value" in numbers and rules.mode == "canary":
        reasons = [
            f"canary accuracy {can.accuracy:.3f} on {can.labeled} labels vs champion "
            f"{champ.accuracy:.3f} on {champ.labeled}: not significantly worse "
            f"(p = {numbers['p_value']:.4f})"
        ]
    elif rules.mode == "ab":
        reasons = [f"canary significantly better (always-valid p = {numbers['ab_p_value']:.4f})"]
    return Analysis("advance", reasons, numbers)


def _serving_checks(rules, evidence: Evidence, numbers: dict, rollback, hold) -> None:
    can, champ = evidence.canary, evidence.champion
    if not evidence.stats_used:
        numbers["stats"] = "not used"
        return
    if evidence.stats_problem:
        hold.append(f"serving stats unavailable: {evidence.stats_problem}")
        return
    if can.requests is None or champ.requests is None:
        hold.append("serving stats have no entry for an arm's version: nothing served it yet")
        return
    numbers.update(canary_requests=can.requests, champion_requests=champ.requests)
    if can.requests:
        rate = (can.errors or 0) / can.requests
        numbers["canary_error_rate"] = rate
        if rate > rules.max_error_rate and can.requests >= rules.min_predictions:
            rollback.append(
                f"canary error rate {rate:.3f} on {can.requests} requests (> max_error_rate "
                f"{rules.max_error_rate})"
            )
    if can.p99_ms is not None and champ.p99_ms:
        ratio = can.p99_ms / champ.p99_ms
        numbers["p99_ratio"] = ratio
        if ratio > rules.max_p99_ratio and can.requests >= rules.min_predictions:
            rollback.append(
                f"canary p99 latency {can.p99_ms:.1f} ms is {ratio:.2f}x the champion's "
                f"{champ.p99_ms:.1f} ms (> max_p99_ratio {rules.max_p99_ratio})"
            )


def _ab_test(rules, evidence: Evidence, numbers: dict, rollback, hold) -> bool:
    can, champ = evidence.canary, evidence.champion
    result = sequential_test(
        can.correct, can.labeled, champ.correct, champ.labeled,
        alpha=rules.alpha, tau=rules.ab_effect, previous_p=evidence.previous_p,
    )  # fmt: skip
    theta = None if math.isnan(result.theta) else result.theta  # nan: an arm has no label
    numbers.update(ab_p_value=result.p_value, ab_lr=result.lr, ab_theta=theta)
    if result.direction == "worse":
        rollback.append(
            f"A/B: canary significantly worse ({can.accuracy:.3f} vs {champ.accuracy:.3f}, "
            f"always-valid p = {result.p_value:.4f} <= alpha {rules.alpha})"
        )
        return False
    if result.direction == "better":
        return True
    if min(can.labeled, champ.labeled) >= rules.ab_max_labels:
        rollback.append(
            f"A/B: no significant difference after {min(can.labeled, champ.labeled)} labels per "
            f"arm (ab_max_labels {rules.ab_max_labels}): the champion stays"
        )
        return False
    hold.append(
        f"A/B: no decision yet (always-valid p = {result.p_value:.4f} > alpha {rules.alpha}, "
        f"{can.labeled} / {champ.labeled} labels)"
    )
    return False
