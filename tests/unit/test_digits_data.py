"""The digits split: disjoint by base image, stratified, deterministic, read-only."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.digits.data import load_images, split_digits


def _rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_load_images_range_and_types() -> None:
    x, y = load_images()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_split_is_disjoint_stratified_and_complete() -> None:
    s = split_digits()
    assert (len(s.seed_y), len(s.pool_y), len(s.holdout_y)) == (600, 697, 500)
    seed, pool, hold = _rows(s.seed_x), _rows(s.pool_x), _rows(s.holdout_x)
    assert not (seed & pool) and not (seed & hold) and not (pool & hold)
    assert len(seed | pool | hold) == 1797
    for labels, n in ((s.seed_y, 600), (s.holdout_y, 500)):
        counts = np.bincount(labels, minlength=10)
        assert counts.min() >= n // 10 - 3 and counts.max() <= n // 10 + 3


def test_split_is_deterministic_and_seed_dependent() -> None:
    a = split_digits(seed_rows=300, holdout_rows=200, seed=1)
    b = split_digits.__wrapped__(seed_rows=300, holdout_rows=200, seed=1)  # bypass the cache
    c = split_digits(seed_rows=300, holdout_rows=200, seed=2)
    assert np.array_equal(a.holdout_x, b.holdout_x) and np.array_equal(a.seed_y, b.seed_y)
    assert not np.array_equal(a.holdout_x, c.holdout_x)


def test_split_arrays_are_read_only() -> None:
    with pytest.raises(ValueError, match="read-only"):
        split_digits().pool_x[0, 0, 0] = 1.0


def test_split_refuses_sizes_that_starve_the_pool() -> None:
    with pytest.raises(ValueError, match="lower one of them"):
        split_digits(seed_rows=1000, holdout_rows=750)
