"""The gate's exact paired tests, against hand sums and scipy.stats.binomtest."""

from __future__ import annotations

from math import comb

import pytest

from evaluation.paired import binom_sf, mcnemar_better, worse_than_margin

scipy_stats = pytest.importorskip("scipy.stats")


def test_binom_sf_exact_values() -> None:
    assert binom_sf(10, 12, 0.5) == (1 + 12 + 66) / 4096
    assert binom_sf(3, 3, 0.5) == 1 / 8
    assert binom_sf(0, 7, 0.3) == 1.0 and binom_sf(8, 7, 0.3) == 0.0
    assert binom_sf(2, 3, 0.25) == pytest.approx(3 * 0.25**2 * 0.75 + 0.25**3, rel=1e-12)


@pytest.mark.parametrize(
    ("k", "n", "p"), [(7, 10, 0.5), (20, 24, 0.5), (12, 13, 0.93), (30, 400, 0.05), (1, 1, 0.7)]
)
def test_binom_sf_matches_scipy(k: int, n: int, p: float) -> None:
    expected = scipy_stats.binomtest(k, n, p, alternative="greater").pvalue
    assert binom_sf(k, n, p) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_better_is_the_one_sided_sign_test() -> None:
    assert mcnemar_better(20, 4) == sum(comb(24, i) for i in range(20, 25)) / 2**24
    assert mcnemar_better(1, 1) == 0.75
    assert mcnemar_better(0, 0) == 1.0  # no discordant row: no evidence
    assert mcnemar_better(0, 5) == 1.0
    for b, c in ((9, 2), (30, 18), (3, 3)):
        expected = scipy_stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue
        assert mcnemar_better(b, c) == pytest.approx(expected, rel=1e-12)


def test_worse_than_margin_shifts_the_null() -> None:
    # margin 0: the plain exact McNemar test, the champion's way
    assert worse_than_margin(2, 10, 200, 0.0) == mcnemar_better(10, 2)
    # margin 0.01 on 200 rows, 12 discordant: q = 1/2 + 200 * 0.01 / 24
    q = 0.5 + 2 / 24
    expected = scipy_stats.binomtest(10, 12, q, alternative="greater").pvalue
    assert worse_than_margin(2, 10, 200, 0.01) == pytest.approx(expected, rel=1e-9)
    # the margin allows more than all 12 discordant rows could lose: no evidence of harm
    assert worse_than_margin(2, 10, 200, 0.06) == 1.0
    # a bigger margin never makes "worse" more significant
    ps = [worse_than_margin(4, 20, 160, m) for m in (0.0, 0.02, 0.05, 0.1)]
    assert ps == sorted(ps)


def test_bad_counts_name_the_fix() -> None:
    with pytest.raises(ValueError, match="b = -1: pass a count"):
        mcnemar_better(-1, 2)
    with pytest.raises(ValueError, match="n = 5 rows but 6 discordant pairs"):
        worse_than_margin(3, 3, 5, 0.0)
    with pytest.raises(ValueError, match="margin = 1.0"):
        worse_than_margin(1, 1, 5, 1.0)
