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
