"""The uncertainty picks of a batch, spread out: diversity in feature space and per-stratum quotas.

Why: uncertainty top-k spends a batch on one region of input space. After a drift, the rows
the champion is least sure of are often near-copies (the same rotated digit, the same new
customer segment), so twenty labels teach what one or two would. Two tools from the active
learning practice fix that without giving up uncertainty:

* **k-center greedy** (Sener and Savarese, 2018, "core-set"), run over a pre-filtered pool
  of the most uncertain candidates (Zhdanov, 2019: uncertainty first, then diversity):
  start from the most uncertain row, then repeatedly take the row farthest from every row
  taken so far. `[curation] pool_factor` sets the trade-off: 1 is plain top-k, larger
  pools weigh diversity more.
* **Stratified quotas**: the picks are shared equally between strata (the predicted class,
  or a slice given by a logged attribute), each stratum's share taken from its own most
  uncertain rows; a stratum with fewer candidates than its share passes the rest on.

Distances are Euclidean over the features standardised within the pool (each dimension
divided by its spread there), so a tabular field in large units (salary) does not drown
the others; a dimension that does not vary in the pool is left as it is. A row without
logged features is never taken for its distance, only to fill a quota nothing else can.
Ties go to the higher uncertainty score, then to the smaller request id: picks replay.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: the stratum name of rows whose stratum is not logged (a missing attribute)
NO_STRATUM = "(none)"


def standardised(features: np.ndarray) -> np.ndarray:
    """Each column divided by its standard deviation over the rows (columns that do not vary
    are left as they are); NaN (a row without features) stays NaN.

    >>> standardised(np.array([[0.0, 5.0], [2.0, 5.0]])).tolist()
    [[0.0, 5.0], [2.0, 5.0]]
    >>> standardised(np.array([[0.0, 100.0], [2.0, 300.0], [4.0, 500.0]])).round(3).tolist()
    [[0.0, 0.612], [1.225, 1.837], [2.449, 3.062]]
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features has shape {x.shape}: pass an (N, D) array")
    with np.errstate(invalid="ignore"):
        spread = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return x / spread


def quotas(strata: Sequence[str], n: int, order: Sequence[int]) -> dict[str, int]:
    """How many of `n` picks each stratum gets: equal shares, dealt one at a time in turn,
    strata taken in the order their best row appears in `order` (most uncertain first); a
    stratum never gets more than it has rows, its turn passes to the others.

    >>> quotas(["a", "a", "a", "b", "c"], 4, [0, 1, 2, 3, 4])
    {'a': 2, 'b': 1, 'c': 1}
    >>> quotas(["a", "b", "b"], 2, [2, 0, 1])
    {'b': 1, 'a': 1}
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n = {n!r}: pass a whole number of picks (0 or more)")
    have: dict[str, int] = {}
    for i in order:  # dict order = the order each stratum's best row is met
        have[strata[i]] = have.get(strata[i], 0) + 1
    share = dict.fromkeys(have, 0)
    left = min(int(n), sum(have.values()))
    while left:
        for s in have:
            if left and share[s] < have[s]:
                share[s] += 1
                left -= 1
    return share


def kcenter_greedy(
    features: np.ndarray,
    n: int,
    order: Sequence[int],
    strata: Sequence[str] | None = None,
    quota: dict[str, int] | None = None,
) -> list[int]:
    """`n` row indices by k-center greedy: the first row of `order` (the most uncertain),
    then each time the row whose distance to the nearest row taken is largest (ties to the
    earlier row in `order`). With `strata` and `quota`, a stratum whose quota is filled is
    skipped. Rows whose features hold NaN are taken last, in `order`.

    >>> x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.0, 0.2]])
    >>> kcenter_greedy(x, 2, [0, 1, 2, 3])
    [0, 2]
    >>> kcenter_greedy(x, 2, [0, 1, 2, 3], ["a", "a", "b", "a"], {"a": 2, "b": 0})
    [0, 3]
    """
    x = np.asarray(features, dtype=np.float64)
    order = np.asarray(list(order), dtype=np.int64)
    if x.ndim != 2 or len(x) < len(order):
        raise ValueError(f"features has shape {x.shape}: pass one row per candidate")
    if (quota is None) != (strata is None):
        raise ValueError("pass strata and quota together (or neither)")
    n = min(int(n), len(order))
    xs = x[order]  # position = rank in `order`, so argmax's first hit is the tie-break
    finite = np.isfinite(xs).all(axis=1)
    xs = np.where(finite[:, None], xs, 0.0)  # rows without features: never measured from
    free = np.ones(len(order), dtype=bool)
    if quota is not None:
        names = sorted(quota)
        code = np.array([names.index(strata[i]) if strata[i] in quota else -1 for i in order])
        left = np.array([quota[s] for s in names] + [0])  # code -1: a stratum with no quota
    nearest = np.full(len(order), np.inf)
    covered = False  # a row with features taken: distances mean something
    taken: list[int] = []
    while len(taken) < n:
        open_ = free if quota is None else free & (left[code] > 0)
        candidates = open_ & finite
        if not candidates.any():
            candidates = open_ & ~finite
            if not candidates.any():
                break
        if covered and (candidates & finite).any():
            best = int(np.argmax(np.where(candidates, nearest, -np.inf)))
        else:
            best = int(np.argmax(candidates))  # the most uncertain open row starts the cover
        taken.append(int(order[best]))
        free[best] = False
        if quota is not None:
            left[code[best]] -= 1
        if finite[best]:
            covered = True
            d = np.sqrt(((xs - xs[best]) ** 2).sum(axis=1))
            nearest = np.minimum(nearest, d)
    return taken


def spread_picks(
    scores: Sequence[float],
    request_ids: Sequence[str],
    n: int,
    features: np.ndarray | None = None,
    strata: Sequence[str | None] | None = None,
) -> list[int]:
    """The `n` picks among a pool of candidates (indices into it), in pick order.

    Without `features` the picks follow uncertainty (the highest `scores` first, ties to the
    smaller request id); with them, k-center greedy over the standardised features. With
    `strata`, equal quotas per stratum (`quotas`), each filled by the same rule.

    >>> spread_picks([0.9, 0.8, 0.7], ["a", "b", "c"], 2, strata=["x", "x", "y"])
    [0, 2]
    >>> x = np.array([[0.0], [0.1], [3.0]])
    >>> spread_picks([0.9, 0.8, 0.7], ["a", "b", "c"], 2, features=x)
    [0, 2]
    """
    if len(scores) != len(request_ids):
        raise ValueError("scores and request_ids must have one value per candidate")
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), str(request_ids[i])))
    names = None if strata is None else [NO_STRATUM if s is None else str(s) for s in strata]
    quota = None if names is None else quotas(names, int(n), order)
    # no features: every row at one point, so every distance is 0 and the greedy takes the
    # open rows in uncertainty order (the same quota bookkeeping, written once)
    x = np.zeros((len(order), 1)) if features is None else standardised(features)
    return kcenter_greedy(x, int(n), order, names, quota)
