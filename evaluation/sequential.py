"""A sequential test of two accuracies that stays valid when it is checked after every batch.

Why: an A/B test peeked at after each batch with a fixed-sample z-test rejects a true null far
more often than alpha (each look is another chance). The mixture sequential probability
ratio test (mSPRT) of Johari, Koomen, Pekelis and Walsh ("Peeking at A/B tests", KDD 2017;
"Always valid inference", Operations Research 2022) gives an always-valid p-value instead:
P(p_n <= alpha for some n) <= alpha under the null, however often one looks.

For the difference of two proportions, theta = p_canary - p_champion, with the estimate
theta_n = correct_c / n_c - correct_0 / n_0 and its plug-in variance
V_n = p_c (1 - p_c) / n_c + p_0 (1 - p_0) / n_0, the normal mixture (prior theta ~ N(0, tau^2))
likelihood ratio against theta = 0 is

    Lambda_n = sqrt(V_n / (V_n + tau^2)) * exp(theta_n^2 * tau^2 / (2 V_n (V_n + tau^2)))

and the always-valid p-value is p_n = min(p_{n-1}, 1 / Lambda_n) (p_0 = 1). The test rejects
when p_n <= alpha; the sign of theta_n says which arm is better. `tau` is the size of a
difference worth detecting (0.05: five points of accuracy). The plug-in variance makes the
guarantee approximate for small samples: `mixture_lr` returns 1 (no evidence) until each
arm has `min_n` outcomes and a positive variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SequentialResult:
    """One look: the likelihood ratio, the always-valid p-value so far, the estimate."""

    lr: float
    p_value: float
    theta: float  # canary accuracy minus champion accuracy (nan when an arm has no outcome)
    variance: float
    reject: bool

    @property
    def direction(self) -> str:
        """ "better" / "worse" (the canary, when rejected), else "none"."""
        if not self.reject:
            return "none"
        return "better" if self.theta > 0 else "worse"


def mixture_lr(
    correct_c: int, n_c: int, correct_0: int, n_0: int, tau: float = 0.05, min_n: int = 10
) -> tuple[float, float, float]:
    """(Lambda_n, theta_n, V_n) of the normal-mixture SPRT for two proportions.

    >>> lr, theta, v = mixture_lr(90, 100, 80, 100, tau=0.05)
    >>> round(theta, 3), round(v, 5), round(lr, 4)
    (0.1, 0.0025, 1.9221)
    >>> mixture_lr(5, 5, 1, 5)[0]  # fewer than min_n outcomes per arm: no evidence
    1.0
    """
    if tau <= 0:
        raise ValueError(f"tau = {tau!r} must be positive: use the difference worth detecting")
    for name, value, n in (("correct_c", correct_c, n_c), ("correct_0", correct_0, n_0)):
        if n < 0 or not 0 <= value <= n:
            raise ValueError(f"{name} = {value} with n = {n}: pass 0 <= correct <= n")
    if n_c == 0 or n_0 == 0:
        return 1.0, math.nan, math.nan
    p_c, p_0 = correct_c / n_c, correct_0 / n_0
    theta = p_c - p_0
    variance = p_c * (1 - p_c) / n_c + p_0 * (1 - p_0) / n_0
    if n_c < min_n or n_0 < min_n or variance <= 0:
        return 1.0, theta, variance
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + (
        theta * theta * t2 / (2 * variance * (variance + t2))
    )
    return math.exp(min(log_lr, 700.0)), theta, variance


def sequential_test(
    correct_c: int,
    n_c: int,
    correct_0: int,
    n_0: int,
    *,
    alpha: float = 0.05,
    tau: float = 0.05,
    previous_p: float = 1.0,
    min_n: int = 10,
) -> SequentialResult:
    """Look once more: the running always-valid p-value `min(previous_p, 1/Lambda_n)`.

    Counts are cumulative since the test started; `previous_p` is the p-value of the last
    look (1.0 at the first).

    >>> r = sequential_test(270, 300, 240, 300, alpha=0.05)
    >>> r.reject, r.direction, round(r.p_value, 5)
    (True, 'better', 0.02222)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha!r} must lie in (0, 1): use e.g. 0.05")
    lr, theta, variance = mixture_lr(correct_c, n_c, correct_0, n_0, tau=tau, min_n=min_n)
    p_value = min(float(previous_p), 1.0 / lr)
    return SequentialResult(lr, p_value, theta, variance, p_value <= alpha)
