"""Pace the label budget: ask for the full budget only when something may have changed.

Why: on a stream with no drift at all the loop spent 600 to 1,200 labels over 100 batches for
nothing (0 triggers, 0 promotions, the static model's accuracy). When the drift check saw no
drift about the serving champion, its label-free estimate says the champion holds, and no
recovery episode is open, a batch asks only for its audit share (all of it drawn at random).
The floor is that share and not zero: audit labels are what the performance trigger and the
estimate's calibration stand on, so the loop keeps watching with them, unbiased; any doubt
(drift flagged, an estimate below the bar or missing, an open episode) spends the full budget.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    """A batch's budget: `budget` labels, `audit_only` when all of them are random audit picks."""

    budget: int
    audit_only: bool
    reason: str


def paced_budget(
    budget: int,
    floor: int,
    *,
    drift: bool | None,
    estimate_low: float | None,
    threshold: float,
    episode_open: bool,
) -> Pace:
    """The budget of one batch (pure: the caller reads the verdict and the episode).

    `drift`: the latest drift check's `dataset_drift` about the serving champion (None: no such
    check); `estimate_low`: the lower end of its label-free accuracy interval (or the estimate
    itself when it has no interval; None: no estimate); `threshold`: `[trigger]
    accuracy_threshold`, the bar the champion must hold; `floor`: the audit share of `budget`.

    >>> paced_budget(20, 4, drift=False, estimate_low=0.93, threshold=0.85, episode_open=False)
    Pace(budget=4, audit_only=True, reason='quiet: no drift, estimated accuracy >= 0.930 (bar 0.85), no open episode: audit share only')
    >>> paced_budget(20, 4, drift=True, estimate_low=0.93, threshold=0.85, episode_open=False).budget
    20
    >>> paced_budget(20, 4, drift=False, estimate_low=None, threshold=0.85, episode_open=False).reason
    'full budget: no label-free estimate'
    """
    if floor > budget or floor < 0:
        raise ValueError(f"floor = {floor} must lie between 0 and the budget ({budget})")
    if drift is None:
        return Pace(budget, False, "full budget: no drift check about the serving champion")
    if drift:
        return Pace(budget, False, "full budget: the drift check flagged drift")
    if episode_open:
        return Pace(budget, False, "full budget: a recovery episode is open")
    if estimate_low is None:
        return Pace(budget, False, "full budget: no label-free estimate")
    if estimate_low < threshold:
        return Pace(
            budget,
            False,
            f"full budget: estimated accuracy {estimate_low:.3f} below the bar {threshold:.2f}",
        )
    return Pace(
        floor,
        True,
        f"quiet: no drift, estimated accuracy >= {estimate_low:.3f} (bar {threshold:.2f}), "
        "no open episode: audit share only",
    )
