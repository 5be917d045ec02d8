"""When to retrain: pure rules that return their verdict with the numbers behind it.

Why pure and explained: a trigger's decision goes into logs, `loopwright status` and the
report card; "retrained because audit accuracy 0.71 [0.62, 0.79] < 0.85 on 90 labels"
lets a reviewer agree or disagree, where a bare True does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class TriggerDecision:
    fire: bool
    kind: str  # "performance", "drift", "periodic", or kinds joined with "+" by combine()
    reasons: tuple[str, ...]
    numbers: dict[str, Any] = field(default_factory=dict)  # JSON-friendly (None, not NaN)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default); honest for small n and p near 0 or 1.

    >>> lo, hi = wilson_interval(8, 10)
    >>> round(lo, 3), round(hi, 3)
    (0.49, 0.943)
    """
    if n <= 0:
        raise ValueError(f"wilson_interval: n = {n}, need at least one outcome")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: successes = {successes} must be within 0..n = {n}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def performance_trigger(
    correct: Iterable[bool], threshold: float, min_labels: int
) -> TriggerDecision:
    """Fire when at least `min_labels` audit outcomes exist and their accuracy < `threshold`.

    `correct` holds one bool per audited prediction (prediction == label).

    >>> d = performance_trigger([True] * 6 + [False] * 4, threshold=0.8, min_labels=10)
    >>> d.fire, d.numbers["accuracy"], d.reasons[0]
    (True, 0.6, 'audit accuracy 0.600 [0.313, 0.832] on 10 labels < threshold 0.800')
    >>> performance_trigger([False] * 3, threshold=0.8, min_labels=10).fire
    False
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold = {threshold}: an accuracy threshold must be within (0, 1]")
    if min_labels < 1:
        raise ValueError(f"min_labels = {min_labels}: must be >= 1")
    outcomes = [bool(c) for c in correct]
    n, hits = len(outcomes), sum(outcomes)
    numbers: dict[str, Any] = {"n": n, "threshold": threshold, "min_labels": min_labels}
    if n == 0:
        numbers.update(accuracy=None, ci_low=None, ci_high=None)
        return TriggerDecision(False, "performance", ("no audit labels yet",), numbers)
    acc = hits / n
    lo, hi = wilson_interval(hits, n)
    numbers.update(accuracy=acc, ci_low=lo, ci_high=hi)
    summary = f"audit accuracy {acc:.3f} [{lo:.3f}, {hi:.3f}] on {n} labels"
    if n < min_labels:
        return TriggerDecision(
            False, "performance", (f"{summary}: too few to judge (need {min_labels})",), numbers
        )
    if acc < threshold:
        return TriggerDecision(
            True, "performance", (f"{summary} < threshold {threshold:.3f}",), numbers
        )
    return TriggerDecision(
        False, "performance", (f"{summary} >= threshold {threshold:.3f}",), numbers
    )


def drift_trigger(
    dataset_drift: bool, drift_share: float, confidence_drop: float, max_confidence_drop: float
) -> TriggerDecision:
    """Label-free: fire on dataset drift, or when mean confidence fell by more than allowed.

    Why both: feature drift can be harmless (and confidence can fall without feature drift
    when the model meets a new kind of input); either is worth labels and a retrain.

    >>> d = drift_trigger(False, 0.2, confidence_drop=0.15, max_confidence_drop=0.1)
    >>> d.fire, d.reasons
    (True, ('mean confidence fell by 0.150 > 0.100 allowed',))
    """
    if not 0.0 <= drift_share <= 1.0:
        raise ValueError(f"drift_share = {drift_share}: a share of drifted features is within 0..1")
    if max_confidence_drop < 0:
        raise ValueError(f"max_confidence_drop = {max_confidence_drop}: must be >= 0")
    numbers = {
        "dataset_drift": bool(dataset_drift),
        "drift_share": drift_share,
        "confidence_drop": confidence_drop,
        "max_confidence_drop": max_confidence_drop,
    }
    reasons = []
    if dataset_drift:
        reasons.append(f"dataset drift: {drift_share:.0%} of features drifted")
    if confidence_drop > max_confidence_drop:
        reasons.append(
            f"mean confidence fell by {confidence_drop:.3f} > {max_confidence_drop:.3f} allowed"
        )
    if reasons:
        return TriggerDecision(True, "drift", tuple(reasons), numbers)
    return TriggerDecision(
        False,
        "drift",
        (
            f"no dataset drift ({drift_share:.0%} of features drifted), confidence drop "
            f"{confidence_drop:.3f} <= {max_confidence_drop:.3f}",
        ),
        numbers,
    )


def confidence_trigger(
    reference_confidence: float,
    current_confidence: float,
    n_current: int,
    max_drop: float,
    min_rows: int = 100,
) -> TriggerDecision:
    """Label-free and immediate: the champion is less sure of live traffic than of the
    held-out rows it was validated on.

    Why beside the drift check: the drift check compares the champion's own first rows with
    its latest, so a freshly promoted champion needs a full reference window first; this
    rule compares with a number stored at training time and works from the first batch.

    >>> confidence_trigger(0.95, 0.70, n_current=400, max_drop=0.1).reasons
    ('mean confidence 0.700 on 400 recent rows vs 0.950 at validation (drop 0.250 > 0.100)',)
    >>> confidence_trigger(0.95, 0.70, n_current=50, max_drop=0.1).fire
    False
    """
    if max_drop < 0:
        raise ValueError(f"max_drop = {max_drop}: must be >= 0")
    drop = reference_confidence - current_confidence
    numbers = {
        "reference": reference_confidence,
        "current": current_confidence,
        "drop": drop,
        "max_drop": max_drop,
        "rows": n_current,
    }
    if n_current < min_rows:
        return TriggerDecision(
            False,
            "confidence",
            (f"confidence: {n_current} recent rows, {min_rows} needed to judge",),
            numbers,
        )
    text = (
        f"mean confidence {current_confidence:.3f} on {n_current} recent rows vs "
        f"{reference_confidence:.3f} at validation (drop {drop:.3f} {'>' if drop > max_drop else '<='} "
        f"{max_drop:.3f})"
    )
    return TriggerDecision(drop > max_drop, "confidence", (text,), numbers)


@dataclass(frozen=True)
class Episode:
    """The trigger's memory between checks (state `trigger_episode`).

    A recovery episode: opened when a rule fires, closed when the champion is back on track
    (`recovery_step`) or *settled* on evidence (`retrain.trigger_episode.settle_reason`).
    `baseline` is the mean validation confidence of the champion that served when the
    episode opened (the pre-drift level the loop is trying to get back to).

    Back-off (`retrain.trigger_episode`): `refusals` counts the gate refusals since the last
    promotion or drift onset, `refused` is the last refused challenger, `gates_seen` how many
    `retrains` events were already counted. `onset_share` / `onset_champion`: the drift
    verdict (share of drifted columns) that opened the episode, and about which champion.
    `promoted`: a challenger was promoted since the episode opened. `settled`: the levels the
    champion was accepted at when the episode ended on evidence (`accuracy`, `confidence`,
    `reason`); while set, the level rules compare with them instead of the validation levels.
    """

    open: bool = False
    baseline: float | None = None
    refusals: int = 0
    refused: str | None = None
    gates_seen: int = 0
    onset_share: float | None = None
    onset_champion: str | None = None
    promoted: bool = False
    settled: dict | None = None


def closed(episode: Episode) -> Episode:
    """The episode ended: no baseline, no onset, not settled; the back-off counters stay
    (only a promotion or a new drift onset resets them)."""
    return replace(
        episode,
        open=False,
        baseline=None,
        onset_share=None,
        onset_champion=None,
        promoted=False,
        settled=None,
    )


def recovery_step(
    episode: Episode,
    fired: TriggerDecision,
    champion_reference: float | None,
    current_confidence: float,
    n_current: int,
    recovery_drop: float,
    min_rows: int = 100,
) -> tuple[TriggerDecision, Episode]:
    """Keep retraining after a trigger until confidence is back near the pre-drift level.

    Why: the rules above fire on *change*. Once a retrained champion is promoted, its own
    reference moved with the drift, so every rule can fall quiet while it is still far
    worse than the model was before the drift began (measured: the loop stalled at 59%
    after its first promotion). An episode stays open while the champion's mean confidence
    on recent traffic is more than `recovery_drop` below the baseline; each step of an open
    episode fires kind "recovery" (retraining still waits for fresh labels). A harder world
    never gets back to the baseline: `retrain.trigger_episode.settle_reason` ends an episode
    on other evidence. `recovery_drop` <= 0 turns this off.

    >>> fire = TriggerDecision(True, "drift", ("drift",), {})
    >>> quiet = TriggerDecision(False, "none", ("quiet",), {})
    >>> d, e = recovery_step(Episode(), fire, 0.95, 0.70, 400, 0.05)
    >>> d.kind, e.open, e.baseline
    ('drift', True, 0.95)
    >>> d, e = recovery_step(e, quiet, 0.80, 0.85, 400, 0.05)
    >>> d.fire, d.kind, e.open
    (True, 'recovery', True)
    >>> d, e = recovery_step(e, quiet, 0.93, 0.91, 400, 0.05)
    >>> d.fire, e == Episode()
    (False, True)
    """
    if recovery_drop <= 0:
        return fired, closed(episode)
    if fired.fire:
        baseline = episode.baseline if episode.open else champion_reference
        return fired, replace(episode, open=baseline is not None, baseline=baseline)
    if not episode.open or episode.baseline is None or n_current < min_rows:
        return fired, episode
    gap = episode.baseline - current_confidence
    numbers = {
        "baseline": episode.baseline,
        "current": current_confidence,
        "gap": gap,
        "recovery_drop": recovery_drop,
        "rows": n_current,
    }
    if gap <= recovery_drop:
        text = (
            f"recovered: mean confidence {current_confidence:.3f} within {recovery_drop:.3f} "
            f"of {episode.baseline:.3f} before the drift"
        )
        decision = TriggerDecision(False, fired.kind, (*fired.reasons, text), numbers)
        return decision, closed(episode)
    text = (
        f"recovering: mean confidence {current_confidence:.3f} on {n_current} recent rows, "
        f"{gap:.3f} below {episode.baseline:.3f} before the drift (> {recovery_drop:.3f})"
    )
    return TriggerDecision(True, "recovery", (text,), numbers), episode


def periodic_trigger(batches_since_retrain: int, every: int) -> TriggerDecision:
    """Fire every `every` batches regardless of evidence; `every = 0` turns it off.

    >>> periodic_trigger(10, every=10).fire, periodic_trigger(9, every=10).fire, periodic_trigger(99, 0).fire
    (True, False, False)
    """
    if every < 0:
        raise ValueError(
            f"every = {every}: give a number of batches >= 1, or 0 to turn periodic retraining off"
        )
    if batches_since_retrain < 0:
        raise ValueError(f"batches_since_retrain = {batches_since_retrain}: must be >= 0")
    numbers = {"batches_since_retrain": batches_since_retrain, "every": every}
    if every == 0:
        return TriggerDecision(False, "periodic", ("periodic retraining is off",), numbers)
    if batches_since_retrain >= every:
        return TriggerDecision(
            True,
            "periodic",
            (f"{batches_since_retrain} batches since the last retrain >= {every}",),
            numbers,
        )
    return TriggerDecision(
        False,
        "periodic",
        (f"{batches_since_retrain} batches since the last retrain < {every}",),
        numbers,
    )


def combine(decisions: Iterable[TriggerDecision]) -> TriggerDecision:
    """Fire if any rule fires. `kind` joins the kinds that fired ("none" if none did);
    `reasons` keeps every rule's reasons, firing ones first; `numbers` is keyed by kind.

    >>> d = combine([periodic_trigger(1, 10), drift_trigger(True, 0.6, 0.0, 0.1)])
    >>> d.fire, d.kind, d.reasons[0]
    (True, 'drift', 'dataset drift: 60% of features drifted')
    """
    decisions = list(decisions)
    fired = [d for d in decisions if d.fire]
    quiet = [d for d in decisions if not d.fire]
    return TriggerDecision(
        fire=bool(fired),
        kind="+".join(d.kind for d in fired) or "none",
        reasons=tuple(r for d in fired + quiet for r in d.reasons),
        numbers={d.kind: d.numbers for d in decisions},
    )
