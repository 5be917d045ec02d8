"""Streaming drift (bounded memory) against the exact in-memory statistics, on small data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import wasserstein_distance

from curation.drift import JENSEN_SHANNON, WASSERSTEIN, compute_drift, compute_drift_streaming
from curation.drift_sketch import HistogramSketch, wasserstein_atoms

CLASSES = ["a", "b", "c"]


def batches(x: np.ndarray, pred: np.ndarray, conf: np.ndarray, size: int):
    """The arrays as prediction-log-like Arrow batches of `size` rows."""
    k = x.shape[1]
    for s in range(0, len(x), size):
        xs = x[s : s + size].astype(np.float32)
        offsets = pa.array(np.arange(len(xs) + 1, dtype=np.int32) * k)
        yield pa.record_batch(
            {
                "features": pa.ListArray.from_arrays(offsets, pa.array(xs.reshape(-1))),
                "pred": pa.array([CLASSES[i] for i in pred[s : s + size]]),
                "confidence": pa.array(conf[s : s + size].astype(np.float32)),
            }
        )


def windows(seed: int, n: int, m: int):
    rng = np.random.default_rng(seed)
    ref = np.stack(
        [
            np.round(rng.beta(2, 3, n) * 16) / 16,  # 17 levels: exact counts
            np.zeros(n),  # constant: Jensen-Shannon, 0
            rng.integers(0, 3, n) / 2,  # 3 values: Jensen-Shannon
            rng.normal(0, 1, n),  # continuous: histogram
        ],
        axis=1,
    )
    cur = np.stack(
        [
            np.round(np.clip(rng.beta(2, 3, m) + 0.1, 0, 1) * 16) / 16,
            np.zeros(m),
            rng.choice([0.0, 0.5, 1.0], m, p=[0.2, 0.3, 0.5]),
            rng.normal(0.3, 1.5, m),
        ],
        axis=1,
    )
    preds = rng.integers(0, 3, n), rng.choice(3, m, p=[0.5, 0.3, 0.2])
    confs = rng.random(n), rng.random(m) * 0.8
    return ref.astype(np.float32), cur.astype(np.float32), preds, confs


def test_streaming_matches_exact_on_discrete_columns_and_within_bound_on_continuous():
    ref, cur, (rp, cp), (rc, cc) = windows(0, 5000, 3000)
    exact = compute_drift(ref, cur, rp, cp, rc.astype(np.float32), cc.astype(np.float32), 3)
    stream = compute_drift_streaming(
        batches(ref, rp, rc, 700), batches(cur, cp, cc, 1100), CLASSES, bins=256
    )
    assert (stream.n_reference, stream.n_current) == (5000, 3000)
    for e, s in zip(exact.columns[:3], stream.columns[:3], strict=True):
        assert (s.column, s.method, s.drifted) == (e.column, e.method, e.drifted)
        assert s.score == pytest.approx(e.score, rel=1e-9, abs=1e-12)
    assert [c.method for c in stream.columns] == [
        WASSERSTEIN, JENSEN_SHANNON, JENSEN_SHANNON, WASSERSTEIN, WASSERSTEIN,
    ]  # fmt: skip
    assert stream.columns[1].score == 0.0
    assert stream.prediction.score == pytest.approx(exact.prediction.score, rel=1e-12)
    assert stream.confidence_ref == pytest.approx(exact.confidence_ref, rel=1e-6)
    # continuous columns (feature 3, confidence): within the sketches' bound of the exact score
    for j, (r, c) in ((3, (ref[:, 3], cur[:, 3])), (4, (rc, cc))):
        rs, cs = HistogramSketch(1, bins=256), HistogramSketch(1, bins=256)
        for s in range(0, len(r), 700):
            rs.update(r[s : s + 700, None].astype(np.float32))
        for s in range(0, len(c), 1100):
            cs.update(c[s : s + 1100, None].astype(np.float32))
        assert rs.distinct(0) is None  # bins hold several values: approximate
        assert rs.std(0) == pytest.approx(np.std(r.astype(np.float32).astype(float)), rel=1e-9)
        bound = (rs.error_bound(0) + cs.error_bound(0)) / rs.std(0)
        assert 0 < bound < 0.05
        assert abs(stream.columns[j].score - exact.columns[j].score) <= bound
    assert stream.drifted_columns == exact.drifted_columns


def test_bound_is_at_most_half_a_bin_and_zero_when_bins_are_pure():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(10_000, 1))
    s = HistogramSketch(1, bins=1024)
    s.update(x)
    assert 0 < s.error_bound(0) <= s.width[0] / 2
    levels = HistogramSketch(1, bins=1024)
    levels.update(np.round(rng.random((10_000, 1)) * 16) / 16)
    assert levels.error_bound(0) == 0.0 and levels.distinct(0) == 17


def test_grid_doubles_when_values_leave_it():
    s = HistogramSketch(1, bins=4)
    s.update(np.array([[0.0], [1.0], [2.0], [3.0]]))  # grid [0, 3] in 4 bins
    width = s.width[0]
    s.update(np.array([[-3.0], [9.0]]))  # needs [-3, 9]: 4x wider
    assert s.width[0] == pytest.approx(4 * width)
    assert s.lo[0] <= -3.0 and s.lo[0] + s.bins * s.width[0] > 9.0
    pos, mass = s.atoms(0)
    assert mass.sum() == 6 == s.n
    assert (pos * mass).sum() == pytest.approx(12.0)  # bin means keep the total exact
    assert s.std(0) == pytest.approx(np.std([0, 1, 2, 3, -3, 9]))


def test_constant_column_then_other_values():
    s = HistogramSketch(2, bins=16)
    s.update(np.zeros((100, 2)))
    assert s.distinct(0) == 1 and s.std(0) == 0.0
    s.update(np.array([[0.5, 7.0], [0.25, 7.0], [1.0, 7.0]]))
    pos, mass = s.atoms(0)
    assert mass.sum() == 103 and (pos * mass).sum() == pytest.approx(1.75)
    assert s.distinct(0) == 4  # 0, 0.25, 0.5, 1 in separate bins
    assert s.mean(1) == pytest.approx(21 / 103)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wasserstein_atoms_matches_scipy_with_weights(seed):
    rng = np.random.default_rng(seed)
    u, v = np.sort(rng.normal(size=30)), np.sort(rng.normal(1, 2, size=20))
    wu, wv = rng.integers(1, 5, 30), rng.integers(1, 5, 20)
    expected = wasserstein_distance(u, v, wu, wv)
    assert wasserstein_atoms(u, wu, v, wv) == pytest.approx(expected, rel=1e-12)


def test_streaming_errors_name_the_problem():
    ref, cur, (rp, cp), (rc, cc) = windows(1, 50, 50)
    bad = ref.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="reference window has NaN/inf in features"):
        compute_drift_streaming(batches(bad, rp, rc, 10), batches(cur, cp, cc, 10), CLASSES)
    with pytest.raises(ValueError, match="outside"):
        compute_drift_streaming(batches(ref, rp, rc, 10), batches(cur, cp, cc, 10), ["a", "b"])
    with pytest.raises(ValueError, match="need rows in both"):
        compute_drift_streaming(batches(ref, rp, rc, 10), iter(()), CLASSES)


def test_doctests():
    import doctest

    import curation.drift_sketch as sketch

    result = doctest.testmod(sketch)
    assert result.attempted > 0 and result.failed == 0
