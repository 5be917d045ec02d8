"""Online adaptation under label shift: re-estimate the class prior of recent traffic from the
champion's own outputs and re-weight its probabilities, without retraining.

Why: when the mix of classes moves (8s and 9s become common) but each class still looks the
same (P(x|y) holds), the champion's posteriors carry the training prior, and Bayes' rule says
how to correct them: p_new(y|x) ∝ p(y|x) · π_new(y) / π_train(y). π_new is unknown without
labels; Saerens, Latinne and Decaestecker (2002) estimate it by EM over unlabeled rows: adjust
the posteriors with the current estimate, average them to get the next estimate, repeat. No
label is spent and no model is trained; the correction is a per-version policy in the
registry that the serving endpoint and score-batch apply (`reweight`).

Where it fails: it assumes P(x|y) does not change. Under covariate or concept shift the
champion's outputs move for other reasons and EM attributes that to the prior; the
`min_shift` bar and the loop's drift checks and gate stay the guard there. EM on an
over-confident model also over-states the shift (Alexandari et al., 2020, calibrate first).

`[label_shift]` is `LabelShiftRules`: defaults and range checks once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: a class never seen in training gets this much prior, so that no weight divides by zero
PRIOR_FLOOR = 1e-6


@dataclass(frozen=True)
class LabelShiftRules:
    """The `[label_shift]` section (see loopwright.toml for the meaning of each key)."""

    enabled: bool = False  # true: re-estimate the prior each round and serve the correction
    window_rows: int = 2000  # the newest champion rows EM reads
    min_rows: int = 400  # fewer rows: no estimate (the prior of 10 classes needs a few hundred)
    min_shift: float = 0.05  # total variation from the training prior below this: no correction
    max_weight: float = 10.0  # a class's weight π_new/π_train is capped here (rare classes)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"[label_shift] enabled = {self.enabled!r}: use true or false")
        for key, low in (("window_rows", 1), ("min_rows", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(
                    f"[label_shift] {key} = {v!r} must be a whole number >= {low}: e.g. 2000"
                )
        s = self.min_shift
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0 <= s <= 1:
            raise ValueError(
                f"[label_shift] min_shift = {s!r} must lie between 0 and 1: a total variation "
                "distance, e.g. 0.05"
            )
        w = self.max_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or w < 1:
            raise ValueError(
                f"[label_shift] max_weight = {w!r} must be 1 or more: e.g. 10 (a class may "
                "count at most 10x its training share)"
            )


def normalised(prior: Sequence[float]) -> np.ndarray:
    """A prior as a probability vector, floored at PRIOR_FLOOR; an error names a bad one.

    >>> normalised([1, 3]).tolist()
    [0.25, 0.75]
    """
    p = np.asarray(prior, dtype=np.float64)
    if p.ndim != 1 or len(p) < 2 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"prior {list(prior)!r}: pass one non-negative share per class")
    p = np.maximum(p / p.sum(), PRIOR_FLOOR)
    return p / p.sum()


def reweight(probs: np.ndarray, weights: Sequence[float] | None) -> np.ndarray:
    """Posteriors under another prior: p · w, renormalised per row (`weights` = π_new/π_train;
    None = unchanged). What the serving endpoint and score-batch apply.

    >>> reweight(np.array([[0.5, 0.5], [0.8, 0.2]]), [1.0, 3.0]).round(3).tolist()
    [[0.25, 0.75], [0.571, 0.429]]
    """
    p = np.asarray(probs, dtype=np.float64)
    if weights is None:
        return p
    w = np.asarray(weights, dtype=np.float64)
    if p.ndim != 2 or w.shape != (p.shape[1],):
        raise ValueError(f"weights of length {w.shape} do not fit probabilities of {p.shape}")
    q = p * w
    return q / q.sum(axis=1, keepdims=True)


def em_prior(
    probs: np.ndarray, train_prior: Sequence[float], max_iter: int = 200, tol: float = 1e-8
) -> tuple[np.ndarray, int]:
    """The class prior of the rows behind `probs` (a model's posteriors trained under
    `train_prior`), by EM (Saerens et al. 2002); returns (prior, iterations).

    >>> p = np.array([[0.9, 0.1]] * 3 + [[0.1, 0.9]])
    >>> prior, _ = em_prior(p, [0.5, 0.5])
    >>> prior.round(3).tolist()
    [0.812, 0.188]
    """
    p = np.asarray(probs, dtype=np.float64)
    base = normalised(train_prior)
    if p.ndim != 2 or p.shape[1] != len(base) or len(p) == 0:
        raise ValueError(
            f"probs of shape {p.shape}: pass (rows, {len(base)}) posteriors, one row at least"
        )
    prior = base.copy()
    for it in range(1, max_iter + 1):
        new = reweight(p, prior / base).mean(axis=0)
        new = np.maximum(new, PRIOR_FLOOR)
        new /= new.sum()
        if np.abs(new - prior).max() < tol:
            return new, it
        prior = new
    return prior, max_iter


def total_variation(a: Sequence[float], b: Sequence[float]) -> float:
    """Half the L1 distance between two priors, in [0, 1].

    >>> total_variation([0.5, 0.5], [0.8, 0.2])
    0.3
    """
    return round(float(np.abs(normalised(a) - normalised(b)).sum() / 2), 12)


@dataclass(frozen=True)
class Adaptation:
    """What one estimate decided: `weights` to serve (None = serve the raw posteriors)."""

    prior: list[float] | None
    train_prior: list[float]
    shift: float | None
    rows: int
    weights: list[float] | None
    reason: str


def decide(probs: np.ndarray, train_prior: Sequence[float], rules: LabelShiftRules) -> Adaptation:
    """Estimate the prior of `probs` and say whether to correct: only on `min_rows` rows or
    more, and only when the estimate is `min_shift` or more (total variation) from the
    training prior; each weight capped at `max_weight`.

    >>> p = np.array([[0.9, 0.1]] * 300 + [[0.1, 0.9]] * 100)
    >>> a = decide(p, [0.5, 0.5], LabelShiftRules(min_rows=100))
    >>> a.weights is not None, round(a.shift, 3)
    (True, 0.312)
    """
    base = normalised(train_prior)
    n = int(len(probs))
    if n < rules.min_rows:
        return Adaptation(None, base.tolist(), None, n, None,
                          f"{n} rows < min_rows {rules.min_rows}: no estimate")  # fmt: skip
    prior, its = em_prior(probs, base)
    shift = total_variation(prior, base)
    if shift < rules.min_shift:
        return Adaptation(prior.tolist(), base.tolist(), shift, n, None,
                          f"prior moved {shift:.3f} < min_shift {rules.min_shift}: "
                          "raw posteriors served")  # fmt: skip
    weights = np.minimum(prior / base, rules.max_weight)
    return Adaptation(prior.tolist(), base.tolist(), shift, n, [round(float(w), 6) for w in weights],
                      f"prior moved {shift:.3f} >= min_shift {rules.min_shift} "
                      f"(EM, {its} iterations, {n} rows): corrected")  # fmt: skip


def label_prior(
    y: Sequence[int], n_classes: int, weights: Sequence[float] | None = None
) -> list[float]:
    """The (weighted) share of each class index among training labels: the `train_prior` a
    model is registered with (what its posteriors assume).

    >>> label_prior([0, 1, 1, 1], 3)
    [0.25, 0.75, 0.0]
    """
    y = np.asarray(y, dtype=np.int64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(y, weights=w, minlength=n_classes).astype(np.float64)[:n_classes]
    total = counts.sum()
    if not total:
        return [round(1 / n_classes, 6)] * n_classes
    return [round(float(c / total), 6) for c in counts]
