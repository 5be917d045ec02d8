"""Drift statistics under the distance rule (normed Wasserstein, Jensen-Shannon): exact values
on hand-made cases, agreement with SciPy on random data. The p-value tests of small references
are in test_curation_drift_pvalues.py."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

import curation.drift as drift
from curation.drift import (
    JENSEN_SHANNON,
    WASSERSTEIN,
    compute_drift,
    jensen_shannon,
    numeric_drift,
    wasserstein_sorted,
)


def verdict(ref_x, cur_x, ref_p=None, cur_p=None, ref_c=None, cur_c=None, n_classes=3, **kw):
    n, m = len(ref_x), len(cur_x)
    ref_p = np.zeros(n, dtype=int) if ref_p is None else ref_p
    cur_p = np.zeros(m, dtype=int) if cur_p is None else cur_p
    ref_c = np.full(n, 0.9) if ref_c is None else ref_c
    cur_c = np.full(m, 0.9) if cur_c is None else cur_c
    kw.setdefault("stattest", "distance")  # hand-made windows are small: force the distances
    return compute_drift(ref_x, cur_x, ref_p, cur_p, ref_c, cur_c, n_classes, **kw)


def test_identical_distributions_do_not_drift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4)).astype(np.float32)
    pred = rng.integers(0, 3, 2000)
    conf = rng.random(2000)
    v = compute_drift(x, x.copy(), pred, pred.copy(), conf, conf.copy(), n_classes=3)
    assert not v.dataset_drift
    assert v.n_drifted == 0 and v.drift_share == 0.0
    assert all(c.score == 0.0 for c in (*v.columns, v.prediction))
    assert v.n_columns == 6  # 4 features + confidence + predicted class
    assert v.confidence_drop == 0.0


def test_shifted_column_exact_score():
    # six distinct values -> normed Wasserstein; shifting by 1 moves every unit of mass by 1
    ref = np.arange(6, dtype=float)
    std = math.sqrt(35 / 12)  # population std of 0..5
    col = numeric_drift("x", ref, ref + 1, threshold=0.1)
    assert col.method == WASSERSTEIN
    assert col.score == pytest.approx(1 / std, rel=1e-12)  # 0.5855
    assert col.drifted

    x_ref = np.stack([ref, ref], axis=1)
    x_cur = np.stack([ref + 1, ref], axis=1)
    v = verdict(x_ref, x_cur, feature_names=["moved", "still"])
    by_name = {c.column: c for c in v.columns}
    assert by_name["moved"].drifted and by_name["moved"].score == pytest.approx(1 / std)
    assert not by_name["still"].drifted and by_name["still"].score == 0.0
    assert v.drifted_columns == ("moved",)
    assert v.n_drifted == 1 and v.n_columns == 4 and v.drift_share == 0.25
    assert not v.dataset_drift


def test_small_shift_below_threshold():
    ref = np.arange(100, dtype=float)
    col = numeric_drift("x", ref, ref + 1, threshold=0.1)
    assert col.score == pytest.approx(1 / np.std(ref))  # ~0.0346
    assert not col.drifted


@pytest.mark.parametrize(("n", "m"), [(1, 1), (7, 3), (500, 1200), (5000, 5000)])
def test_wasserstein_matches_scipy(n, m):
    rng = np.random.default_rng(n + m)
    u = rng.normal(size=n).astype(np.float32)
    v = rng.gamma(2.0, size=m)
    v[: m // 3] = np.round(v[: m // 3])  # ties inside and across samples
    expected = wasserstein_distance(u.astype(np.float64), v)
    assert wasserstein_sorted(np.sort(u), np.sort(v)) == pytest.approx(
        expected, rel=1e-9, abs=1e-12
    )


def test_jensen_shannon_matches_scipy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = rng.integers(0, 50, 10)
        q = rng.integers(0, 50, 10)
        p[0] += 1
        q[1] += 1
        assert jensen_shannon(p, q) == pytest.approx(float(jensenshannon(p, q)), abs=1e-12)
    assert jensen_shannon(np.array([3, 0]), np.array([0, 5])) == pytest.approx(
        math.sqrt(math.log(2))
    )


def test_constant_columns_stay_finite():
    zeros = np.zeros(3000)
    same = numeric_drift("border", zeros, zeros, 0.1)
    assert (same.method, same.score, same.drifted) == (JENSEN_SHANNON, 0.0, False)
    # few distinct values (<= 5 over both windows): Jensen-Shannon on value frequencies
    few = np.zeros(3000)
    few[:300] = 1.0
    js = numeric_drift("border", zeros, few, 0.1)
    assert js.method == JENSEN_SHANNON
    assert js.score == pytest.approx(float(jensenshannon([3000, 0], [2700, 300])))
    # many distinct values against a constant reference: std floored at 0.001, finite and drifted
    rng = np.random.default_rng(0)
    noisy = rng.random(3000) * 0.01
    wd = numeric_drift("border", zeros, noisy, 0.1)
    assert wd.method == WASSERSTEIN
    assert math.isfinite(wd.score)
    assert wd.score == pytest.approx(wasserstein_distance(zeros, noisy) / 0.001)
    assert wd.drifted


def test_prediction_drift_and_confidence_drop():
    ref_p = np.repeat([0, 1, 2], 100)
    cur_p = np.repeat([0, 1, 2], [200, 50, 50])
    x = np.zeros((300, 1))
    v = verdict(x, x, ref_p, cur_p, np.full(300, 0.9), np.full(300, 0.6))
    expected = float(jensenshannon([100, 100, 100], [200, 50, 50]))
    assert v.prediction.method == JENSEN_SHANNON
    assert v.prediction.score == pytest.approx(expected)  # 0.2146
    assert v.prediction.drifted
    assert v.confidence_ref == pytest.approx(0.9)
    assert v.confidence_cur == pytest.approx(0.6)
    assert v.confidence_drop == pytest.approx(0.3)
    conf = {c.column: c for c in v.columns}["confidence"]
    assert conf.method == JENSEN_SHANNON and conf.score == pytest.approx(math.sqrt(math.log(2)))
    # 1 feature (no drift) + confidence + pred drifted: 2 of 3 -> dataset drift
    assert v.n_drifted == 2 and v.dataset_drift


def test_drift_share_threshold_is_inclusive():
    ref = np.tile(np.arange(10.0), (1, 1)).T.repeat(2, axis=1)  # (10, 2)
    cur = ref.copy()
    cur[:, 0] += 5
    v = verdict(ref, cur, drift_share=0.25)  # 1 of 4 drifted = 0.25
    assert v.drift_share == 0.25 and v.dataset_drift
    assert not verdict(ref, cur, drift_share=0.26).dataset_drift


def test_to_dict_is_plain_json():
    rng = np.random.default_rng(2)
    v = verdict(rng.normal(size=(50, 2)), rng.normal(1, 1, size=(40, 2)))
    d = v.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["columns"][0]["column"] == "f0" and d["prediction"]["column"] == "pred"
    assert d["drifted_columns"] == list(v.drifted_columns)


def test_clear_errors():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="same F"):
        verdict(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="need rows in both"):
        verdict(x, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="class indices 0..3 but n_classes = 3"):
        verdict(x, x, ref_p=np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="pass predicted class indices"):
        verdict(x, x, ref_p=np.array(["0"] * 5))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="cur_features has 1 NaN/inf values in column 'px1'"):
        verdict(x, bad, feature_names=["px0", "px1"])
    with pytest.raises(ValueError, match="cur_conf has shape"):
        verdict(x, x, cur_c=np.ones(4))
    with pytest.raises(ValueError, match="reserved"):
        verdict(x, x, feature_names=["pred", "b"])


def test_large_windows_stay_exact():
    rng = np.random.default_rng(3)
    ref = rng.random((200_000, 2), dtype=np.float32)
    cur = (rng.random((150_000, 2)) * 1.2).astype(np.float32)
    v = verdict(ref, cur)
    for j in range(2):
        expected = wasserstein_distance(ref[:, j].astype(float), cur[:, j].astype(float))
        expected /= np.std(ref[:, j].astype(float))
        assert v.columns[j].score == pytest.approx(expected, rel=1e-9)


def test_doctests():
    assert doctest.testmod(drift).failed == 0


def test_every_module_of_the_split_passes_its_doctests():
    import curation.drift_exact
    import curation.drift_streaming
    import curation.drift_verdict

    for module in (curation.drift_exact, curation.drift_streaming, curation.drift_verdict):
        assert doctest.testmod(module).failed == 0
    assert doctest.testmod(curation.drift_exact).attempted >= 2


def test_names_importers_use_still_come_from_curation_drift():
    # flows/, bench/ and tests import these from curation.drift: the split keeps them there
    from curation.drift import (  # noqa: F401
        ColumnDrift,
        DriftVerdict,
        ModelOutputs,
        categorical_drift,
        compute_drift_streaming,
    )

    assert set(drift.__all__) <= set(dir(drift))


def _log_batches(x, size):
    import pyarrow as pa

    for s in range(0, len(x), size):
        flat = pa.array(x[s : s + size].astype(np.float32).reshape(-1))
        yield pa.record_batch({"features": pa.FixedSizeListArray.from_arrays(flat, x.shape[1])})


def test_streaming_with_rescored_outputs_equals_compute_drift():
    from curation.drift import ModelOutputs, compute_drift_streaming

    rng = np.random.default_rng(4)
    ref = np.round(rng.beta(2, 3, (3000, 3)) * 16) / 16  # grey levels: the sketch is exact
    cur = np.round(np.clip(rng.beta(2, 3, (5000, 3)) + [0, 0.2, 0], 0, 1) * 16) / 16
    ref_p, cur_p = rng.integers(0, 3, 800), rng.choice(3, 400, p=[0.6, 0.2, 0.2])
    ref_c, cur_c = rng.random(800), rng.random(400) * 0.8
    got = compute_drift_streaming(
        _log_batches(ref, 700), _log_batches(cur, 900), ["a", "b", "c"],
        outputs=(ModelOutputs(ref_p, ref_c), ModelOutputs(cur_p, cur_c)), stattest="distance",
    )  # fmt: skip
    # the exact statistics, features over every row, outputs over the re-scored rows
    exact = [numeric_drift(f"f{j}", ref[:, j], cur[:, j], 0.1) for j in range(3)]
    exact.append(numeric_drift("confidence", ref_c, cur_c, 0.1))
    for g, e in zip(got.columns, exact, strict=True):
        assert (g.column, g.method, g.drifted) == (e.column, e.method, e.drifted)
        assert g.score == pytest.approx(e.score, abs=1e-12)
    pred = float(jensenshannon(np.bincount(ref_p, minlength=3), np.bincount(cur_p, minlength=3)))
    assert got.prediction.score == pytest.approx(pred) and got.prediction.drifted
    assert (got.n_reference, got.n_current) == (3000, 5000)  # feature rows
    assert got.confidence_ref == pytest.approx(ref_c.mean())
    assert got.columns[1].drifted and not got.columns[0].drifted


def test_rescored_outputs_are_checked():
    from curation.drift import ModelOutputs, compute_drift_streaming

    x = np.zeros((10, 2))
    good = ModelOutputs(np.zeros(10, dtype=int), np.full(10, 0.9))

    def run(ref_out, cur_out=good):
        return compute_drift_streaming(
            _log_batches(x, 4), _log_batches(x, 4), ["a", "b"], outputs=(ref_out, cur_out)
        )

    assert not run(good).dataset_drift
    with pytest.raises(ValueError, match="reference outputs.pred holds class indices 0..2"):
        run(ModelOutputs(np.array([0, 2]), np.array([0.5, 0.5])))
    with pytest.raises(ValueError, match="current outputs have shape"):
        run(good, ModelOutputs(np.array([], dtype=int), np.array([])))
    with pytest.raises(ValueError, match="current outputs.confidence has 1 NaN"):
        run(good, ModelOutputs(np.array([0, 1]), np.array([0.5, np.nan])))
    with pytest.raises(ValueError, match="outputs.confidence has shape"):
        run(ModelOutputs(np.array([0, 1]), np.array([0.5])))
