"""What a drift check returns (a verdict per column and for the dataset, with the numbers)
and the checks of what it is given.

Shared by the exact statistics (`curation.drift`) and the streaming ones
(`curation.drift_streaming`), so both answer in the same shape and refuse the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

WASSERSTEIN = "wasserstein_normed"
JENSEN_SHANNON = "jensenshannon"
KS = "ks"  # two-sample Kolmogorov-Smirnov p-value
CHISQUARE = "chisquare"  # chi-square goodness-of-fit p-value (current vs reference frequencies)
Z_TEST = "z"  # two-proportion z-test p-value (two distinct values)
P_VALUE_METHODS = frozenset({KS, CHISQUARE, Z_TEST})
MIN_STD = 0.001  # Evidently's floor on the reference std
MAX_DISCRETE = 5  # at most this many distinct values: treated as categories
SMALL_REFERENCE = 1000  # Evidently: a reference of at most this many rows gets p-value tests
AUTO, DISTANCE = "auto", "distance"  # the rule: Evidently's choice by size, or distances always
STATTESTS = (AUTO, DISTANCE)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. `score` is a distance (drifted when >= threshold) or, for the
    p-value tests (`score_kind == "p_value"`), a p-value (drifted when below the threshold;
    K-S also at equality, as Evidently)."""

    column: str
    method: str  # "wasserstein_normed" | "jensenshannon" | "ks" | "chisquare" | "z"
    score: float
    threshold: float
    drifted: bool
    score_kind: str = "distance"  # "distance" | "p_value"


@dataclass(frozen=True)
class DriftVerdict:
    """Dataset-level verdict and the numbers behind it.

    `columns` holds one entry per feature, then one for `confidence`; the predicted class is
    in `prediction`. `drift_share` and `n_drifted` count all of them (n_columns = F + 2).
    `confidence_drop` = mean reference confidence - mean current confidence. `rule` says
    which family of tests judged the columns: "p_value" (a reference of at most
    `SMALL_REFERENCE` rows under the "auto" rule: K-S, chi-square, z, as Evidently) or
    "distance" (normed Wasserstein, Jensen-Shannon).
    """

    dataset_drift: bool
    drift_share: float
    n_drifted: int
    n_columns: int
    columns: tuple[ColumnDrift, ...]
    prediction: ColumnDrift
    confidence_ref: float
    confidence_cur: float
    confidence_drop: float
    n_reference: int
    n_current: int
    rule: str = "distance"

    def to_dict(self) -> dict:
        """Plain JSON types; adds `drifted_columns` (names, the predicted class as "pred")."""
        out = asdict(self)
        out["columns"] = list(out["columns"])
        out["drifted_columns"] = list(self.drifted_columns)
        return out

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in (*self.columns, self.prediction) if c.drifted)


def column_drift(method: str, name: str, score: float, threshold: float) -> ColumnDrift:
    """A column's verdict in the direction of its method, as Evidently decides it: a distance
    drifts at or above the threshold, a chi-square or z p-value below it, a K-S p-value at or
    below it.

    >>> column_drift(KS, "x", 0.05, 0.05).drifted, column_drift(Z_TEST, "x", 0.05, 0.05).drifted
    (True, False)
    """
    score, threshold = float(score), float(threshold)
    if method in P_VALUE_METHODS:
        drifted = score <= threshold if method == KS else score < threshold
        return ColumnDrift(name, method, score, threshold, bool(drifted), "p_value")
    return ColumnDrift(name, method, score, threshold, bool(score >= threshold))


def check_share(drift_share: float) -> None:
    if not 0.0 <= drift_share <= 1.0:
        raise ValueError(f"drift_share = {drift_share} must be within [0, 1]")


def check_stattest(stattest: str, p_value: float) -> None:
    if stattest not in STATTESTS:
        raise ValueError(f"stattest = {stattest!r}: use one of {list(STATTESTS)}")
    if not 0.0 < p_value < 1.0:
        raise ValueError(f"p_value = {p_value} must be within (0, 1), e.g. 0.05")


def uses_p_values(stattest: str, n_reference: int) -> bool:
    """Evidently's rule (`_get_default_stattest`): p-value tests when the reference has at
    most `SMALL_REFERENCE` rows, distances above; "distance" forces distances at every size.

    >>> uses_p_values("auto", 1000), uses_p_values("auto", 1001), uses_p_values("distance", 50)
    (True, False, False)
    """
    return stattest == AUTO and n_reference <= SMALL_REFERENCE


def check_vector(name: str, x: np.ndarray, n: int, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1 or len(x) != n:
        raise ValueError(f"{name} has shape {x.shape}: pass one value per row of {what} ({n})")
    return x


def check_finite(name: str, x: np.ndarray, names: Sequence[str] | None = None) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        where = ""
        if x.ndim == 2 and names is not None:
            where = f" in column {names[int(np.nonzero(bad.any(axis=0))[0][0])]!r}"
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN/inf values{where}: drop or impute them first"
        )


def check_classes(name: str, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Predicted class indices in 0..n_classes-1, as int64."""
    if not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"{name} has dtype {pred.dtype}: pass predicted class indices (int)")
    if len(pred) and (pred.min() < 0 or pred.max() >= n_classes):
        raise ValueError(
            f"{name} holds class indices {int(pred.min())}..{int(pred.max())} but n_classes = "
            f"{n_classes}: map class names to indices 0..{n_classes - 1}"
        )
    return pred.astype(np.int64)


def column_names(names: Sequence[str] | None, f: int) -> list[str]:
    """`names`, or f0..f{f-1}; checked against the number of features and reserved names."""
    out = [f"f{j}" for j in range(f)] if names is None else list(names)
    if len(out) != f:
        raise ValueError(f"feature_names has {len(out)} names for {f} feature columns")
    if {"confidence", "pred"} & set(out):
        raise ValueError("feature_names must not use the reserved names 'confidence' or 'pred'")
    return out


def combine(
    columns: list[ColumnDrift],
    prediction: ColumnDrift,
    drift_share: float,
    n: int,
    m: int,
    conf_ref: float,
    conf_cur: float,
    rule: str = DISTANCE,
) -> DriftVerdict:
    """The dataset verdict: drift when the share of drifted columns reaches `drift_share`;
    `rule` is "p_value" or "distance" (see `DriftVerdict`)."""
    n_drifted = sum(c.drifted for c in columns) + int(prediction.drifted)
    n_columns = len(columns) + 1
    share = n_drifted / n_columns
    conf_ref, conf_cur = float(conf_ref), float(conf_cur)
    return DriftVerdict(
        dataset_drift=bool(share >= drift_share),
        drift_share=float(share),
        n_drifted=int(n_drifted),
        n_columns=int(n_columns),
        columns=tuple(columns),
        prediction=prediction,
        confidence_ref=conf_ref,
        confidence_cur=conf_cur,
        confidence_drop=conf_ref - conf_cur,
        n_reference=int(n),
        n_current=int(m),
        rule=rule,
    )
