"""The always-valid sequential test: exact values of the mixture likelihood ratio, and a
false-positive rate at most alpha when it is peeked at after every batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.sequential import mixture_lr, sequential_test


def test_mixture_lr_exact_value():
    # theta 0.1, V = 0.9*0.1/100 + 0.8*0.2/100 = 0.0025, tau^2 = 0.0025:
    # Lambda = sqrt(0.5) * exp(0.01 * 0.0025 / (2 * 0.0025 * 0.005)) = sqrt(0.5) * e
    lr, theta, v = mixture_lr(90, 100, 80, 100, tau=0.05)
    assert theta == pytest.approx(0.1) and v == pytest.approx(0.0025)
    assert lr == pytest.approx(math.sqrt(0.5) * math.e, rel=1e-12)


def test_no_difference_gives_a_ratio_below_one_and_small_samples_none():
    lr, theta, _ = mixture_lr(80, 100, 80, 100)
    assert theta == 0 and lr == pytest.approx(math.sqrt(0.0032 / (0.0032 + 0.0025)))
    assert mixture_lr(3, 5, 1, 5) == (1.0, pytest.approx(0.4), pytest.approx(0.08))
    assert mixture_lr(0, 0, 3, 4)[0] == 1.0
    assert mixture_lr(50, 50, 50, 50)[0] == 1.0  # zero variance: no evidence either way


def test_p_value_is_running_minimum_and_direction():
    r = sequential_test(270, 300, 240, 300, alpha=0.05)
    assert r.p_value == pytest.approx(1 / r.lr) and r.reject and r.direction == "better"
    kept = sequential_test(80, 100, 80, 100, previous_p=0.01, alpha=0.05)
    assert kept.p_value == 0.01 and kept.reject  # the evidence of earlier looks stays
    worse = sequential_test(240, 300, 270, 300)
    assert worse.direction == "worse"
    with pytest.raises(ValueError, match="correct_c = 5 with n = 4"):
        mixture_lr(5, 4, 1, 4)
    with pytest.raises(ValueError, match=r"alpha = 1.5 must lie in \(0, 1\)"):
        sequential_test(1, 2, 1, 2, alpha=1.5)


def _fpr_under_peeking(alpha: float, sims: int, batches: int, per_batch: int, p: float, seed):
    """Share of null A/B runs (same accuracy p in both arms) in which the test rejects at
    any of `batches` looks."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for _ in range(sims):
        a = rng.binomial(1, p, size=batches * per_batch).cumsum()
        b = rng.binomial(1, p, size=batches * per_batch).cumsum()
        prev = 1.0
        for k in range(1, batches + 1):
            n = k * per_batch
            r = sequential_test(int(a[n - 1]), n, int(b[n - 1]), n, alpha=alpha, previous_p=prev)
            prev = r.p_value
            if r.reject:
                rejected += 1
                break
    return rejected / sims


def test_false_positive_rate_under_peeking_stays_below_alpha():
    # 400 null runs x 40 looks of 25 labels per arm; 3 standard errors of tolerance
    fpr = _fpr_under_peeking(0.05, sims=400, batches=40, per_batch=25, p=0.85, seed=7)
    assert fpr <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)


def test_a_fixed_sample_z_test_peeked_at_would_not_be_valid():
    """The reason for the mSPRT: the naive two-sided z-test at every look rejects far more."""
    rng = np.random.default_rng(7)
    rejected = 0
    for _ in range(400):
        a = rng.binomial(1, 0.85, size=1000).cumsum()
        b = rng.binomial(1, 0.85, size=1000).cumsum()
        for k in range(1, 41):
            n = 25 * k
            pa, pb = a[n - 1] / n, b[n - 1] / n
            se = math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n) or 1.0
            if abs(pa - pb) / se > 1.96:
                rejected += 1
                break
    assert rejected / 400 > 0.15
