"""Latency with an injected clock: exact percentiles and throughput."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.latency import measure_latency


class FakeModel:
    """Each call costs 1 ms + 0.5 ms per row on a fake clock; records batch sizes."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sizes: list[int] = []

    def clock(self) -> float:
        return self.now

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.sizes.append(len(x))
        self.now += 0.001 + 0.0005 * len(x)
        return np.full((len(x), 2), 0.5)


def test_exact_numbers_on_fake_clock() -> None:
    m = FakeModel()
    out = measure_latency(m, np.zeros((64, 3)), repeats=10, warmup=2, clock=m.clock)
    assert out["p50_ms"] == pytest.approx(1.5)
    assert out["p99_ms"] == pytest.approx(1.5)
    assert out["rows_per_s"] == pytest.approx(64 / 0.033)
    assert m.sizes == [1] * 12 + [64] * 3


def test_batch_size_larger_than_x_is_clipped() -> None:
    m = FakeModel()
    measure_latency(m, np.zeros((3, 3)), batch_size=8, repeats=2, warmup=0, clock=m.clock)
    assert m.sizes == [3, 3, 3, 3, 3]


def test_real_clock_runs() -> None:
    out = measure_latency(lambda x: np.full((len(x), 2), 0.5), np.zeros((8, 2)), repeats=5)
    assert set(out) == {"p50_ms", "p99_ms", "rows_per_s"}
    assert out["p50_ms"] >= 0 and out["p99_ms"] >= out["p50_ms"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repeats": 0}, "repeats = 0"),
        ({"batch_size": 0}, "batch_size = 0"),
        ({"warmup": -1}, "warmup = -1"),
    ],
)
def test_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        measure_latency(lambda x: x, np.zeros((2, 2)), **kwargs)


def test_empty_x() -> None:
    with pytest.raises(ValueError, match="x is empty"):
        measure_latency(lambda x: x, np.zeros((0, 2)))
