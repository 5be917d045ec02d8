"""How a trigger episode settles and backs off: pure rules over the gate's past verdicts.

Why: the rules in `retrain.triggers` fire on levels (audit accuracy below a threshold,
confidence below the validation level or the pre-drift baseline). In a world that stays
harder than the one before the drift those levels are never reached again, so the loop
retrained at every batch and the gate refused each challenger, forever (measured: the last
7 of 10 batches of the demo's rotation hold). These rules let the evidence end that:

* **settle** (`settle_reason`): an open episode ends when the champion is as good as the
  evidence can tell on current traffic: after a promotion in this episode (the champion has
  adapted once), the next `[trigger] settle_refusals` challengers, each trained on more
  labels (the back-off), were refused by the gate (more labels did not help); or a
  champion promoted during the episode has audit accuracy not significantly below
  `accuracy_threshold` (the Wilson upper bound reaches it). A settled episode remembers
  the levels it settled at; from then on the level rules compare with those
  (`settled_decisions`: a significant fall of audit accuracy, or confidence
  `confidence_drop` below the settled level), not with the validation levels.
* **back off** (`backoff_labels`): each refused retrain doubles (`backoff_factor`) the
  labels the next one needs, counted since the refused challenger's dataset, up to
  `backoff_max_labels`; a promotion or a new drift onset resets it. It does not hold a
  retrain while the champion is failing (`failing`: audit accuracy significantly below
  `accuracy_threshold`).
* **new drift onset** (`drift_onset`): a drift verdict that is about something new: the
  first in this episode, one against a different champion's own reference, or one whose
  share of drifted columns is significantly beyond (Wilson lower bound above) the largest
  share seen in the episode (`onset_share`: the share that opened it, raised by every later
  drift verdict about the same champion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from retrain.triggers import Episode, TriggerDecision, wilson_interval


def absorb_gates(episode: Episode, gates: Sequence[tuple[str, bool]]) -> Episode:
    """Count the gate verdicts (challenger, promoted) the episode has not counted yet
    (`gates` is every `retrains` event, oldest first): a refusal adds one and becomes the
    challenger labels are counted from; a promotion resets the count.

    >>> e = absorb_gates(Episode(open=True), [("v2", True), ("v3", False), ("v4", False)])
    >>> e.refusals, e.refused, e.gates_seen, e.promoted
    (2, 'v4', 3, True)
    >>> absorb_gates(e, [("v2", True), ("v3", False), ("v4", False)]) == e
    True
    """
    start = episode.gates_seen if episode.gates_seen <= len(gates) else 0
    ep = episode
    for challenger, promoted in gates[start:]:
        if promoted:
            ep = replace(ep, refusals=0, refused=None, promoted=ep.open or ep.promoted)
        else:
            ep = replace(ep, refusals=ep.refusals + 1, refused=challenger)
    return replace(ep, gates_seen=len(gates))


def drift_onset(episode: Episode, drift: dict | None) -> str | None:
    """Why this drift verdict is a new onset (None: it is not).

    >>> drift = {"dataset_drift": True, "drift_share": 0.5, "n_drifted": 9, "n_columns": 18,
    ...          "champion": "v1"}
    >>> drift_onset(Episode(), drift)
    'dataset drift (share 0.50) opens an episode'
    >>> drift_onset(Episode(open=True, onset_share=0.5, onset_champion="v1"), drift) is None
    True
    >>> drift_onset(Episode(open=True, onset_share=0.3, onset_champion="v1"),
    ...             {**drift, "n_drifted": 18, "drift_share": 1.0})
    'drift share 1.00 [0.82, 1.00] of 18 columns is beyond 0.30 seen in the episode'
    """
    if not drift or not drift.get("dataset_drift"):
        return None
    share, champion = float(drift["drift_share"]), drift.get("champion")
    if episode.onset_share is None:
        return f"dataset drift (share {share:.2f}) opens an episode"
    if episode.onset_champion != champion:
        return f"dataset drift (share {share:.2f}) against champion {champion}'s own reference"
    n, k = int(drift.get("n_columns") or 0), int(drift.get("n_drifted") or 0)
    if n < 1:
        return None
    lo, hi = wilson_interval(min(k, n), n)
    if lo > episode.onset_share:
        return (
            f"drift share {share:.2f} [{lo:.2f}, {hi:.2f}] of {n} columns is beyond "
            f"{episode.onset_share:.2f} seen in the episode"
        )
    return None


def onset(episode: Episode, drift: dict) -> Episode:
    """A new drift onset: the back-off and a settled state end, the onset is remembered."""
    return replace(
        episode,
        refusals=0,
        refused=None,
        settled=None,
        onset_share=float(drift["drift_share"]),
        onset_champion=drift.get("champion"),
    )


def backoff_labels(refusals: int, min_labels: int, factor: float, cap: int) -> int:
    """New labels the next retrain needs after `refusals` refused ones.

    >>> [backoff_labels(r, 20, 2.0, 320) for r in range(6)]
    [20, 40, 80, 160, 320, 320]
    """
    if refusals < 0:
        raise ValueError(f"refusals = {refusals}: must be >= 0")
    return int(min(cap, math.ceil(min_labels * factor ** min(refusals, 64))))


def failing(correct: np.ndarray, threshold: float, min_labels: int) -> str | None:
    """Why the champion is significantly below `threshold` on its audit labels (None: it is
    not, or too few labels). Why the back-off yields to it: measured, with a gate that needs
    evidence, a clean model at 0.37-0.45 accuracy on rotated digits waited 8 batches for the
    back-off's labels before the one challenger that was promoted (rotation-ramp, seed 7).

    >>> failing(np.array([True] * 30 + [False] * 30), 0.85, 20)
    'audit accuracy 0.500 [0.377, 0.623] on 60 labels is significantly below 0.850'
    >>> failing(np.array([True] * 48 + [False] * 12), 0.85, 20) is None
    True
    """
    n = len(correct)
    if n < min_labels:
        return None
    hits = int(np.count_nonzero(correct))
    lo, hi = wilson_interval(hits, n)
    if hi >= threshold:
        return None
    return (
        f"audit accuracy {hits / n:.3f} [{lo:.3f}, {hi:.3f}] on {n} labels is significantly "
        f"below {threshold:.3f}"
    )


def settle_reason(
    episode: Episode,
    correct: np.ndarray,
    threshold: float,
    min_labels: int,
    refusals: int,
    on_accuracy: bool = True,
) -> str | None:
    """Why the open episode ends on evidence (None: it goes on); see the module doc.
    `refusals`: `[trigger] settle_refusals` (0: that rule is off); `on_accuracy`:
    `[trigger] settle_on_accuracy`.

    >>> ep = Episode(open=True, baseline=0.95, refusals=2, promoted=True)
    >>> settle_reason(ep, np.array([True] * 10), 0.85, 20, 2)
    'the last 2 challengers, trained on more labels, were refused by the gate'
    >>> ep = Episode(open=True, baseline=0.95, promoted=True)
    >>> settle_reason(ep, np.array([True] * 40 + [False] * 10), 0.85, 20, 2)
    'audit accuracy 0.800 [0.670, 0.888] on 50 labels is not significantly below 0.850'
    >>> settle_reason(ep, np.array([True] * 30 + [False] * 20), 0.85, 20, 2) is None
    True
    """
    if not episode.open:
        return None
    if refusals and episode.promoted and episode.refusals >= refusals:
        return (
            f"the last {episode.refusals} challengers, trained on more labels, were refused "
            "by the gate"
        )
    n = len(correct)
    if on_accuracy and episode.promoted and n >= min_labels:
        hits = int(np.count_nonzero(correct))
        lo, hi = wilson_interval(hits, n)
        if hi >= threshold:
            return (
                f"audit accuracy {hits / n:.3f} [{lo:.3f}, {hi:.3f}] on {n} labels is not "
                f"significantly below {threshold:.3f}"
            )
    return None


def settled_decisions(
    settled: dict,
    correct: np.ndarray,
    confidence: float,
    n_rows: int,
    min_rows: int,
    min_labels: int,
    confidence_drop: float,
) -> list[TriggerDecision]:
    """The level rules of a settled episode: against the levels it settled at.

    >>> s = {"accuracy": 0.8, "confidence": 0.85, "reason": "r"}
    >>> [d.fire for d in settled_decisions(s, np.array([True] * 45 + [False] * 15), 0.84, 400,
    ...                                    100, 20, 0.1)]
    [False, False]
    >>> d = settled_decisions(s, np.array([True] * 30 + [False] * 30), 0.70, 400, 100, 20, 0.1)
    >>> [x.fire for x in d], d[0].reasons[0]
    ([True, True], 'audit accuracy 0.500 [0.377, 0.623] on 60 labels is significantly below 0.800 it settled at')
    """
    out = []
    n = len(correct)
    level = settled.get("accuracy")
    if level is not None and n >= min_labels:
        hits = int(np.count_nonzero(correct))
        lo, hi = wilson_interval(hits, n)
        below = hi < level
        text = (
            f"audit accuracy {hits / n:.3f} [{lo:.3f}, {hi:.3f}] on {n} labels is "
            f"{'significantly' if below else 'not significantly'} below {level:.3f} it settled at"
        )
        numbers = {"accuracy": hits / n, "ci_low": lo, "ci_high": hi, "settled": level, "n": n}
        out.append(TriggerDecision(below, "regression", (text,), numbers))
    conf_level = settled.get("confidence")
    if conf_level is not None and n_rows >= min_rows:
        drop = conf_level - confidence
        text = (
            f"mean confidence {confidence:.3f} on {n_rows} recent rows vs {conf_level:.3f} it "
            f"settled at (drop {drop:.3f} {'>' if drop > confidence_drop else '<='} "
            f"{confidence_drop:.3f})"
        )
        numbers = {"settled": conf_level, "current": confidence, "drop": drop, "rows": n_rows}
        out.append(TriggerDecision(drop > confidence_drop, "confidence", (text,), numbers))
    return out
