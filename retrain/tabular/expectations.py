"""Behavioural tests for a loan model on Agrawal records (directional and invariance).

Why these two: in Agrawal's concepts, the applicant's zipcode never decides the class by
itself (only the house value, which is its own field, does in concept 9), so a model whose
answer moves with the zipcode alone learned a proxy. And under the concepts the bundled
scenarios use (0, 2 ignore salary; 6 to 9 grant `class_0` on disposable income, which
grows with salary) a higher salary never makes `class_0` less likely: a model that says
otherwise learned noise. Concepts 1, 3, 4 and 5 (salary bands) break the directional rule,
so a scenario using them should not gate on it.
"""

from __future__ import annotations

import numpy as np

from retrain.tabular.schema import CATEGORICAL, NUMERIC, OFFSETS
from retrain.task import Expectation, ExpectationResult, PredictProba

SALARY = NUMERIC.index("salary")


def _rows(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"expectation got inputs of shape {x.shape}: pass (N, 40) model inputs")
    return x


def salary_directional(
    raise_by: float = 20000.0, tolerance: float = 0.1, min_share: float = 0.95
) -> Expectation:
    """+raise_by salary lowers P(class_0) by more than `tolerance` on at most 1 - min_share of rows."""
    name = f"salary_directional_{raise_by:g}"

    def run(predict_proba: PredictProba, x: np.ndarray, y: np.ndarray) -> ExpectationResult:
        base = _rows(x)
        more = base.copy()
        more[:, SALARY] += raise_by
        before = np.asarray(predict_proba(base))[:, 0]
        after = np.asarray(predict_proba(more))[:, 0]
        value = float(np.mean(after >= before - tolerance))
        return ExpectationResult(
            name=name,
            passed=value >= min_share,
            value=value,
            threshold=min_share,
            detail=f"{value:.1%} of {len(base)} applicants keep P(class_0) (within "
            f"{tolerance:g}) when their salary rises by {raise_by:,.0f}",
        )

    return Expectation(
        name=name,
        description=f"a salary {raise_by:,.0f} higher never lowers P(class_0) (share >= {min_share:.0%})",
        run=run,
    )


def zipcode_invariance(min_unchanged: float = 0.85, seed: int = 0) -> Expectation:
    """Moving an applicant to another zipcode (house value kept) leaves the prediction.

    Why 0.85: first champions trained on 600 seed rows measured 0.89 to 0.96 here (seeds 2,
    3, 5 of the bundled scenarios); a model answering from the zipcode measures about 0.5."""
    name = "zipcode_invariance"
    start, n = OFFSETS["zipcode"], len(CATEGORICAL["zipcode"])

    def run(predict_proba: PredictProba, x: np.ndarray, y: np.ndarray) -> ExpectationResult:
        base = _rows(x)
        moved = base.copy()
        rng = np.random.default_rng(seed)
        old = base[:, start : start + n].argmax(axis=1)
        new = (old + rng.integers(1, n, size=len(base))) % n  # always another zipcode
        moved[:, start : start + n] = 0.0
        moved[np.arange(len(base)), start + new] = 1.0
        same = np.asarray(predict_proba(base)).argmax(1) == np.asarray(predict_proba(moved)).argmax(
            1
        )
        value = float(same.mean())
        return ExpectationResult(
            name=name,
            passed=value >= min_unchanged,
            value=value,
            threshold=min_unchanged,
            detail=f"{value:.1%} of {len(base)} predictions unchanged in another zipcode",
        )

    return Expectation(
        name=name,
        description=f"another zipcode alone changes at most {1 - min_unchanged:.0%} of predictions",
        run=run,
    )


def default_expectations() -> tuple[Expectation, ...]:
    return (salary_directional(), zipcode_invariance())
