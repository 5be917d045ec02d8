"""Metrics of the scenario benchmark (`loopwright bench loop`): pure functions on curves.

Why separate and pure: the benchmark's claims ("3x fewer labels", "recovers in 4 batches")
are only as good as these definitions, so each is written once, with exact examples, and
unit-tested on hand-made curves. Curves are per-batch accuracies indexed by batch number.

>>> acc = [1.0, 1.0, 0.5, 0.75, 1.0]
>>> curve_auc(acc, start=2)
0.75
>>> detection_delay([1, 3, 4], onset=2), false_triggers([1, 3, 4], onset=2)
(1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _curve(values: Sequence[float], name: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name} is empty: pass one accuracy per batch")
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} holds {bad[0]}: every batch needs a finite accuracy")
    return out


def curve_auc(acc: Sequence[float], start: int | None) -> float:
    """Area under the accuracy curve from batch `start` (drift onset) to the end, per batch.

    The area of a step curve (one unit of width per batch) divided by the number of batches,
    so it reads as an accuracy in [0, 1] and curves of different lengths compare. With no
    onset (`start=None`, a scenario without drift) the whole curve counts.

    >>> curve_auc([1.0, 0.5, 0.0], start=1)
    0.25
    """
    a = _curve(acc, "acc")
    s = 0 if start is None else int(start)
    if not 0 <= s < len(a):
        raise ValueError(f"start = {start} is outside the curve's {len(a)} batches")
    return sum(a[s:]) / (len(a) - s)


def rolling_mean(acc: Sequence[float], start: int, window: int = 3) -> list[float]:
    """Trailing mean over `window` batches, never reaching back before `start`.

    Entry k is the mean of batches max(start, start + k - window + 1) .. start + k.

    >>> rolling_mean([0.0, 0.25, 0.5, 1.0], start=1, window=2)
    [0.25, 0.375, 0.75]
    """
    a = _curve(acc, "acc")
    if window < 1:
        raise ValueError(f"window = {window}: must be >= 1 batch")
    out = []
    for t in range(start, len(a)):
        lo = max(start, t - window + 1)
        out.append(sum(a[lo : t + 1]) / (t + 1 - lo))
    return out


def batches_to_recover(
    acc: Sequence[float],
    oracle: Sequence[float],
    onset: int | None,
    window: int = 3,
    tolerance: float = 0.03,
) -> int | None:
    """Batches from onset to the first batch from which the policy's `window`-batch rolling
    mean stays within `tolerance` of the oracle's (at or above oracle - tolerance) to the end.

    0 means never behind; None means it never recovered (or no onset to recover from).

    >>> batches_to_recover([0.9, 0.5, 0.6, 0.9, 0.9, 0.9], [0.9] * 6, onset=1, window=1)
    2
    """
    a, o = _curve(acc, "acc"), _curve(oracle, "oracle")
    if len(a) != len(o):
        raise ValueError(f"acc has {len(a)} batches, oracle {len(o)}: compare the same stream")
    if onset is None:
        return None
    if not 0 <= onset < len(a):
        raise ValueError(f"onset = {onset} is outside the curve's {len(a)} batches")
    ra, ro = rolling_mean(a, onset, window), rolling_mean(o, onset, window)
    ok = [x >= y - tolerance - 1e-12 for x, y in zip(ra, ro, strict=True)]
    if not ok[-1]:
        return None
    k = len(ok)
    while k > 0 and ok[k - 1]:
        k -= 1
    return k


def detection_delay(trigger_batches: Sequence[int], onset: int | None) -> int | None:
    """Batches from drift onset to the first trigger at or after it (None: never, or no onset).

    >>> detection_delay([7, 12], onset=6), detection_delay([3], onset=6)
    (1, None)
    """
    if onset is None:
        return None
    after = [int(b) for b in trigger_batches if b >= onset]
    return min(after) - onset if after else None


def false_triggers(trigger_batches: Sequence[int], onset: int | None) -> int:
    """Triggers before the first drifting batch (every trigger when there is no drift)."""
    return sum(1 for b in trigger_batches if onset is None or b < onset)


@dataclass(frozen=True)
class MatchedBudget:
    """The random budget whose AUC matches a target AUC.

    `bound` says how to read `budget`: "exact" (interpolated between two measured budgets),
    "at_most" (the smallest random budget already reaches the target), "at_least" (even the
    largest does not: the true match lies beyond it).
    """

    budget: float
    bound: str


def matched_budget(budgets: Sequence[float], aucs: Sequence[float], target: float) -> MatchedBudget:
    """Budget at which the random-sampling AUC curve reaches `target`, linearly interpolated.

    The measured AUCs are made monotone first (running maximum over increasing budgets),
    because a bigger budget can measure a hair lower by noise and must not be "matched"
    before a smaller one.

    >>> matched_budget([10, 20, 40], [0.80, 0.86, 0.90], 0.88)
    MatchedBudget(budget=30.0, bound='exact')
    >>> matched_budget([10, 20], [0.80, 0.86], 0.95).bound
    'at_least'
    """
    pairs = sorted(zip((float(b) for b in budgets), _curve(aucs, "aucs"), strict=True))
    if not pairs:
        raise ValueError("no random budgets measured: run loop-random at 1x..8x the budget")
    env: list[tuple[float, float]] = []
    best = -math.inf
    for b, a in pairs:
        best = max(best, a)
        env.append((b, best))
    if target <= env[0][1]:
        return MatchedBudget(env[0][0], "at_most")
    for (b0, a0), (b1, a1) in zip(env, env[1:], strict=False):
        if a0 < target <= a1:
            return MatchedBudget(b0 + (b1 - b0) * (target - a0) / (a1 - a0), "exact")
    return MatchedBudget(env[-1][0], "at_least")


def label_efficiency(
    random_budgets: Sequence[float],
    random_aucs: Sequence[float],
    target_auc: float,
    target_budget: float,
) -> tuple[float, str]:
    """AUC-matched label efficiency: matched random budget / the target policy's budget.

    2.0 means random sampling needs twice the labels to reach the same AUC. The bound of
    the match comes along ("at_least" efficiency when random never catches up).

    >>> label_efficiency([10, 20, 40, 80], [0.80, 0.85, 0.88, 0.90], 0.89, 10)
    (6.0, 'exact')
    """
    if target_budget <= 0:
        raise ValueError(f"target_budget = {target_budget}: a budget must be > 0 labels")
    m = matched_budget(random_budgets, random_aucs, target_auc)
    return m.budget / target_budget, m.bound


def harmful(before: float, after: float, max_drop: float = 0.005) -> bool:
    """True when a promotion lowered held-out accuracy by more than `max_drop` (0.005 = 0.5 pt).

    >>> harmful(0.90, 0.894), harmful(0.90, 0.896)
    (True, False)
    """
    return after < before - max_drop - 1e-12


def paired_p_worse(b: int, c: int) -> float:
    """One-sided exact McNemar p-value for "the new model is worse than the old one".

    On a paired set (both models judged on the same images) only the discordant images tell
    the models apart: `b` = images the old model got right and the new one wrong, `c` = the
    reverse. If both were equally accurate each discordant image would fall either way with
    probability 1/2, so p = P(X >= b) for X ~ Binomial(b + c, 1/2). Exact integer
    arithmetic (no normal approximation: a few discordant images are common). No discordant
    image: no evidence either way, p = 1. The same test as the gate's
    (`evaluation.paired.mcnemar_better`, with the models' roles swapped): one definition.

    >>> paired_p_worse(5, 0), paired_p_worse(3, 3), paired_p_worse(0, 0)
    (0.03125, 0.65625, 1.0)
    """
    from evaluation.paired import mcnemar_better

    for name, v in (("b", b), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name} = {v!r}: a count of discordant images must be an int >= 0")
    return mcnemar_better(int(b), int(c))


def harmful_promotion(
    before: float, after: float, b: int, c: int, max_drop: float = 0.005, alpha: float = 0.05
) -> bool:
    """A promotion that did harm: held-out accuracy fell by more than `max_drop` (`harmful`)
    AND the fall is significant on the paired held-out images (`paired_p_worse(b, c)` < alpha).

    Why both: with 1,500 held-out images half a point is 7.5 images, within the noise of two
    models that disagree on a hundred; the drop alone counts chance as harm.

    >>> harmful_promotion(0.90, 0.894, b=12, c=3), harmful_promotion(0.90, 0.894, b=20, c=11)
    (True, False)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha}: a significance level must lie in (0, 1), e.g. 0.05")
    return harmful(before, after, max_drop) and paired_p_worse(b, c) < alpha


def stable_batches(phases: Sequence[int], params: Sequence[object]) -> list[bool]:
    """Per batch: does it lie in a stable phase, one whose drift parameters are the same at
    every batch (`params[i]`: the scenario's data parameters of batch i)? A ramp
    (rotation {start, end}, a gradual concept change) varies within its phase: not stable.

    >>> stable_batches([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 3, 3])
    [True, True, False, False, True, True]
    """
    if len(phases) != len(params):
        raise ValueError(
            f"{len(phases)} phase indices, {len(params)} parameter sets: one of each per batch"
        )
    first: dict[int, object] = {}
    varies: set[int] = set()
    for ph, p in zip(phases, params, strict=True):
        if ph not in first:
            first[ph] = p
        elif p != first[ph]:
            varies.add(ph)
    return [ph not in varies for ph in phases]


def retrains_after_recovery(
    retrain_batches: Sequence[int], stable: Sequence[bool], recovered_at: int | None
) -> float | None:
    """Retrains per 10 batches of a stable phase from the batch at which accuracy recovered
    (`recovered_at` = onset + `batches_to_recover`) to the end: compute spent once the loop
    should have settled. None when it never recovered, or no stable batch follows recovery.

    >>> retrains_after_recovery([3, 6, 7, 9], [False] * 5 + [True] * 5, recovered_at=4)
    6.0
    """
    if recovered_at is None:
        return None
    counted = [i for i in range(max(int(recovered_at), 0), len(stable)) if stable[i]]
    if not counted:
        return None
    retrained = set(int(b) for b in retrain_batches)
    return 10.0 * sum(1 for i in counted if i in retrained) / len(counted)


def triggers_per_100(trigger_batches: Sequence[int], n_batches: int, onset: int | None):
    """Triggers per 100 batches over the whole stream of a scenario without drift (every one
    is a false alarm); None on a drifting scenario (see `false_triggers`, `detection_delay`).

    >>> triggers_per_100([4, 50], 120, onset=None), triggers_per_100([4], 30, onset=5)
    (1.6666666666666667, None)
    """
    if onset is not None:
        return None
    if n_batches < 1:
        raise ValueError(f"n_batches = {n_batches}: a stream has at least one batch")
    return 100.0 * len(trigger_batches) / n_batches


def estimate_mae(estimates: Sequence[float | None], acc: Sequence[float]) -> float | None:
    """Mean |label-free estimate - true accuracy| in points over the batches with an estimate
    (None where the loop had none yet, e.g. too few audit labels to calibrate); None, never
    0, when no batch has one.

    >>> estimate_mae([None, 0.75, 0.5], [0.5, 0.875, 0.5])
    6.25
    """
    if len(estimates) != len(acc):
        raise ValueError(f"{len(estimates)} estimates, {len(acc)} accuracies: one per batch")
    pairs = [(float(e), float(a)) for e, a in zip(estimates, acc, strict=True) if e is not None]
    if not pairs:
        return None
    return 100.0 * sum(abs(e - a) for e, a in pairs) / len(pairs)
