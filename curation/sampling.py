"""Which predictions go to people for labels: uncertainty top-k plus a random audit share.

Why two kinds of picks: uncertainty sampling gets the most model improvement per label, but
labels chosen by uncertainty are a biased sample, so accuracy measured on them says nothing
about production accuracy. The audit share is drawn uniformly at random *first*, from all
candidates, so accuracy on audit labels stays an unbiased estimate.

>>> import numpy as np, pyarrow as pa
>>> t = pa.table({"request_id": ["a", "b", "c", "d"],
...               "probs": [[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01]]})
>>> select(t, budget=2, strategy="margin", audit_share=0.0).request_ids
('b', 'c')
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STRATEGIES = ("least_confidence", "margin", "entropy", "random")
#: reasons a row is picked; "random" only under strategy="random" (picks beyond the audit share)
REASONS = ("uncertainty", "audit", "random")


def _as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs has shape {p.shape}: pass a (N, C) array of class probabilities")
    return p


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - max probability, in [0, 1 - 1/C]; higher = more uncertain.

    >>> least_confidence(np.array([[0.7, 0.3], [0.5, 0.5]])).round(2).tolist()
    [0.3, 0.5]
    """
    return 1.0 - _as_probs(probs).max(axis=1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """1 - (top-1 minus top-2 probability), in [0, 1]; higher = more uncertain.

    >>> margin_scores(np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])).round(2).tolist()
    [0.5, 1.0]
    """
    p = _as_probs(probs)
    if p.shape[1] == 1:
        return np.zeros(len(p))
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats (natural log, as the DuckDB queries compute it); 0 * ln 0 = 0.

    >>> entropy_scores(np.array([[1.0, 0.0], [0.5, 0.5]])).round(4).tolist()
    [0.0, 0.6931]
    """
    p = _as_probs(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return np.maximum(-terms.sum(axis=1), 0.0)  # no -0.0


_SCORERS = {
    "least_confidence": least_confidence,
    "margin": margin_scores,
    "entropy": entropy_scores,
}
# when a table carries no probs, the prediction log's precomputed columns give the same ranking
_FROM_COLUMN = {
    "least_confidence": ("confidence", lambda c: 1.0 - c),
    "margin": ("margin", lambda m: 1.0 - m),
    "entropy": ("entropy", lambda e: e),
}


@dataclass(frozen=True)
class Selection:
    """The picked request ids, why each was picked, and its uncertainty score.

    Audit picks come first (in draw order), then uncertainty picks by decreasing score.
    """

    request_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.request_ids) == len(self.reasons) == len(self.scores):
            raise ValueError("Selection: request_ids, reasons and scores must have the same length")

    def __len__(self) -> int:
        return len(self.request_ids)

    def ids_for(self, reason: str) -> tuple[str, ...]:
        return tuple(
            r for r, why in zip(self.request_ids, self.reasons, strict=True) if why == reason
        )


def probs_matrix(table: pa.Table, column: str = "probs") -> np.ndarray:
    """A `list<float>` column as an (N, C) float64 array; every row must have C values."""
    col = table.column(column).combine_chunks()
    if col.null_count:
        raise ValueError(
            f"{column} has {col.null_count} null rows: log the full probability vector"
        )
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if len(lengths) == 0:
        return np.zeros((0, 0))
    if lengths.min() != lengths.max():
        raise ValueError(
            f"{column} rows have {lengths.min()} to {lengths.max()} classes: "
            "every row must hold the full probability vector in the task's class order"
        )
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    return values.reshape(len(lengths), int(lengths[0]))


def uncertainty(table: pa.Table, strategy: str) -> np.ndarray:
    """Uncertainty score per row for `strategy` ("random" scores by least confidence)."""
    name = "least_confidence" if strategy == "random" else strategy
    if "probs" in table.column_names:
        return _SCORERS[name](probs_matrix(table))
    column, convert = _FROM_COLUMN[name]
    if column not in table.column_names:
        raise ValueError(
            f"candidates have neither 'probs' nor '{column}': strategy {strategy!r} needs one of them"
        )
    return convert(table.column(column).to_numpy(zero_copy_only=False).astype(np.float64))


def select(
    candidates: pa.Table,
    budget: int,
    strategy: str,
    audit_share: float = 0.2,
    seed: int = 0,
    exclude: Collection[str] = (),
) -> Selection:
    """Pick up to `budget` rows to label: a random audit share first, then top uncertainty.

    The audit count is round(budget * audit_share), at least 1 when audit_share > 0 and
    budget >= 2. Rows whose request_id is in `exclude` (already queued or labeled) are never
    picked; a request_id appearing twice counts once. Ties in score go to the smaller
    request_id, and the random draw is over rows sorted by request_id, so the result does not
    depend on row order. Under strategy "random" the picks beyond the audit share are random
    too, with reason "random".
    """
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer):
        raise ValueError(f"budget = {budget!r} must be an integer number of samples")
    if budget < 0:
        raise ValueError(f"budget = {budget} is negative: ask for 0 or more samples")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy = {strategy!r} is unknown: use one of {list(STRATEGIES)}")
    if not 0.0 <= audit_share <= 1.0:
        raise ValueError(
            f"audit_share = {audit_share} must be within [0, 1] (0.2 = 20% random audit)"
        )
    if "request_id" not in candidates.column_names:
        raise ValueError(
            f"candidates have no 'request_id' column (columns: {candidates.column_names})"
        )

    id_col = candidates.column("request_id")
    if id_col.null_count:
        raise ValueError("candidates.request_id has nulls: every prediction needs a request_id")
    if candidates.num_rows == 0:
        return Selection((), (), ())
    ids = np.asarray(id_col.to_pylist(), dtype=str)
    scores = uncertainty(candidates, strategy)
    if np.isnan(scores).any():
        raise ValueError("candidates have NaN probabilities: fix the model output before curating")

    # eligible rows: first occurrence of each id, not excluded, in id order (order-free result)
    unique_ids, first = np.unique(ids, return_index=True)
    if len(exclude):
        first = first[~np.isin(unique_ids, np.asarray(list(exclude), dtype=str))]
    rows = first.astype(np.int64)

    budget = min(int(budget), len(rows))
    n_audit = round(budget * audit_share)
    if audit_share > 0 and budget >= 2:
        n_audit = max(1, n_audit)
    n_audit = min(n_audit, budget)

    # work on positions into `rows` (sorted by id): a smaller position is a smaller id
    rng = np.random.default_rng(seed)
    drawn = rng.permutation(len(rows))
    audit_pos = drawn[:n_audit]
    n_rest = budget - n_audit
    if strategy == "random":
        rest_pos, why = drawn[n_audit:budget], "random"
    else:
        remaining = np.setdiff1d(np.arange(len(rows)), audit_pos)  # sorted by id
        rank = np.lexsort((remaining, -scores[rows[remaining]]))  # score desc, then id asc
        rest_pos, why = remaining[rank[:n_rest]], "uncertainty"
    audit, picked_rest = rows[audit_pos], rows[rest_pos]

    picked = np.concatenate([audit, picked_rest]).astype(np.int64)
    reasons = ("audit",) * len(audit) + (why,) * len(picked_rest)
    return Selection(
        request_ids=tuple(ids[picked].tolist()),
        reasons=reasons,
        scores=tuple(scores[picked].tolist()),
    )
