"""Drift on small references follows Evidently's choice of test: clean traffic is not flagged
at 50, 500 or 5,000 rows, and the per-column verdicts equal Evidently's own (run for real);
the streamed tests equal the in-memory ones exactly, whatever the current window's size."""

from __future__ import annotations

import doctest

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.datasets import load_wine

import curation.drift_pvalues as dp
from curation.drift import (
    CHISQUARE,
    KS,
    WASSERSTEIN,
    Z_TEST,
    ModelOutputs,
    compute_drift,
    compute_drift_streaming,
)
from curation.drift_pvalues import CurrentTests, pvalue_drift
from curation.drift_verdict import column_drift

CLASSES = ["class_0", "class_1", "class_2"]
WINE = load_wine()
NAMES = [n.replace("/", "_") for n in WINE.feature_names]  # 13 features, as the model
W = np.random.default_rng(0).normal(size=(13, 3)) / WINE.data.std(0)[:, None]


def wine_traffic(n: int, seed: int, shift: float = 0.0):
    """Wine-like traffic: features drawn from a normal fitted to load_wine (optionally the
    first 8 features shifted by `shift` standard deviations), scored by a fixed linear model:
    (features float32, class probabilities)."""
    rng = np.random.default_rng(seed)
    mu, cov = WINE.data.mean(0), np.cov(WINE.data, rowvar=False)
    x = rng.multivariate_normal(mu, cov, n)
    x[:, :8] += shift * WINE.data.std(0)[:8]
    z = (x - mu) @ W
    p = np.exp(z - z.max(1, keepdims=True))
    return x.astype(np.float32), p / p.sum(1, keepdims=True)


def wine_window(n: int, seed: int, shift: float = 0.0):
    """`wine_traffic` as (features, predicted class, confidence)."""
    x, p = wine_traffic(n, seed, shift)
    return x, p.argmax(1), p.max(1).astype(np.float32)


def evidently_summary(ref, cur) -> dict:
    from curation.drift_report import frames_for_report, run_preset, summarize

    frames = [frames_for_report(x, np.array(CLASSES)[p], c, NAMES) for x, p, c in (ref, cur)]
    return summarize(run_preset(*frames, [*NAMES, "confidence"], ["pred"]).dict())


def ours(ref, cur, **kw):
    (rx, rp, rc), (cx, cp, cc) = ref, cur
    return compute_drift(rx, cx, rp, cp, rc, cc, 3, feature_names=NAMES, class_names=CLASSES, **kw)


EVIDENTLY_METHOD = {KS: "K-S p_value", CHISQUARE: "chi-square p_value", Z_TEST: "Z-test p_value",
                    WASSERSTEIN: "Wasserstein distance (normed)",
                    "jensenshannon": "Jensen-Shannon distance"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "shift"), [(50, 0.0), (500, 0.0), (5000, 0.0), (500, 0.4)])
def test_verdicts_equal_evidentlys_and_clean_traffic_is_not_flagged(rows, shift):
    ref, cur = wine_window(rows, 1), wine_window(rows, 2, shift)
    v = ours(ref, cur)
    ev = evidently_summary(ref, cur)
    columns = (*v.columns, v.prediction)
    assert len(columns) == 15 == ev["n_columns"]
    for c in columns:
        assert EVIDENTLY_METHOD[c.method] == ev["methods"][c.column], c.column
        assert c.drifted == (c.column in ev["drifted_columns"]), c.column
        assert c.score == pytest.approx(ev["per_column"][c.column], rel=1e-9, abs=1e-12)
    assert (v.n_drifted, v.dataset_drift) == (ev["n_drifted"], ev["dataset_drift"])
    assert v.rule == ("p_value" if rows <= 1000 else "distance")
    if shift == 0.0:
        assert not v.dataset_drift and v.n_drifted <= 1
    else:  # 8 of 13 features moved by 0.4 std: the tests see it at 500 rows
        assert v.dataset_drift and set(NAMES[:8]) <= set(v.drifted_columns)


def test_distances_on_small_clean_samples_were_false_alarms():
    """What the issue saw: 51 clean reference rows, the large-sample rule at every size."""
    ref, cur = wine_window(51, 1), wine_window(51, 2)
    old = ours(ref, cur, stattest="distance")
    assert old.dataset_drift and old.n_drifted >= 12  # 14 of 15 in the issue
    new = ours(ref, cur)
    assert new.rule == "p_value" and not new.dataset_drift and new.n_drifted <= 1
    assert {c.method for c in new.columns} == {KS} and new.prediction.method in {CHISQUARE, Z_TEST}


def test_test_choice_by_distinct_values_and_exact_pvalues():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=300), rng.normal(0.3, 1, 200)
    ks = pvalue_drift("x", ref, cur, 0.05)
    assert ks.method == KS and ks.score_kind == "p_value"
    assert ks.score == stats.ks_2samp(ref, cur)[1] and ks.drifted
    # 3 values: chi-square of current counts against reference frequencies scaled to it
    r3, c3 = np.repeat([0.0, 1.0, 2.0], [50, 30, 20]), np.repeat([0.0, 1.0, 2.0], [40, 40, 20])
    chi = pvalue_drift("x", r3, c3, 0.05)
    assert chi.method == CHISQUARE
    assert chi.score == pytest.approx(stats.chisquare([40, 40, 20], [50, 30, 20])[1], rel=1e-12)
    # a value only the current window holds: expected count 0, p = 0
    assert pvalue_drift("x", r3, np.append(c3, 7.0), 0.05).score == 0.0
    # 2 values: z-test; one value the same in both windows: p = 1
    r2, c2 = np.repeat([0.0, 1.0], [60, 40]), np.repeat([0.0, 1.0], [45, 55])
    z = pvalue_drift("x", r2, c2, 0.05)
    p1, p2, pooled = 0.4, 0.55, (40 + 55) / 200
    expected = 2 * (1 - stats.norm.cdf(abs(p1 - p2) / np.sqrt(pooled * (1 - pooled) * 0.02)))
    assert z.method == Z_TEST and z.score == pytest.approx(expected, rel=1e-12) and z.drifted
    same = pvalue_drift("border", np.zeros(50), np.zeros(80), 0.05)
    assert (same.method, same.score, same.drifted) == (Z_TEST, 1.0, False)


def test_pvalue_direction_at_the_threshold():
    # Evidently: K-S drifts at p <= threshold, chi-square and z at p < threshold
    assert column_drift(KS, "a", 0.05, 0.05).drifted
    assert not column_drift(CHISQUARE, "a", 0.05, 0.05).drifted
    assert column_drift(Z_TEST, "a", 0.049, 0.05).drifted
    assert not column_drift(KS, "a", 0.2, 0.05).drifted
    assert column_drift(WASSERSTEIN, "a", 0.1, 0.1).drifted  # distances: at or above


def batches(x, pred, conf, size):
    for s in range(0, len(x), size):
        flat = pa.array(x[s : s + size].astype(np.float32).reshape(-1))
        yield pa.record_batch({
            "features": pa.FixedSizeListArray.from_arrays(flat, x.shape[1]),
            "pred": pa.array([CLASSES[i] for i in pred[s : s + size]], pa.string()),
            "confidence": pa.array(conf[s : s + size], pa.float32()),
        })  # fmt: skip


def mixed_windows(n: int, m: int, seed: int):
    """Columns of every kind: continuous, 3 values, 2 values, constant, and few values plus a
    value the reference never had (rare in the current window)."""
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=(n, 5)), rng.normal(0.05, 1, size=(m, 5))
    for x in (ref, cur):
        x[:, 1] = np.round(x[:, 1]).clip(-1, 1)
        x[:, 2] = x[:, 2] > 0
        x[:, 3] = 0.0
        x[:, 4] = np.round(x[:, 4]).clip(0, 1)
    cur[rng.random(m) < 0.002, 4] = 0.5
    cur[m // 2, 4] = 0.5  # at least once, in a later batch than the first
    preds = rng.integers(0, 3, n), rng.choice(3, m, p=[0.4, 0.3, 0.3])
    confs = rng.random(n).astype(np.float32), rng.random(m).astype(np.float32)
    return ref.astype(np.float32), cur.astype(np.float32), preds, confs


@pytest.mark.parametrize(("n", "m"), [(40, 60), (1000, 9000), (700, 25_000)])
def test_streamed_tests_equal_the_in_memory_ones(n, m):
    ref, cur, (rp, cp), (rc, cc) = mixed_windows(n, m, n + m)
    exact = compute_drift(ref, cur, rp, cp, rc, cc, 3, class_names=CLASSES)
    stream = compute_drift_streaming(batches(ref, rp, rc, 97), batches(cur, cp, cc, 1013), CLASSES)
    assert exact.rule == stream.rule == "p_value"
    assert [c.method for c in exact.columns] == [KS, CHISQUARE, Z_TEST, Z_TEST, CHISQUARE, KS]
    for e, s in zip((*exact.columns, exact.prediction), (*stream.columns, stream.prediction),
                    strict=True):  # fmt: skip
        assert (s.column, s.method, s.drifted) == (e.column, e.method, e.drifted)
        assert s.score == pytest.approx(e.score, rel=1e-12, abs=1e-300)
    assert (stream.n_reference, stream.n_current) == (n, m)
    assert stream.confidence_cur == pytest.approx(exact.confidence_cur, rel=1e-6)


def test_streamed_ks_beyond_the_exact_size_equals_scipy():
    rng = np.random.default_rng(9)
    ref, cur = rng.normal(size=(300, 1)), rng.normal(0.02, 1, size=(40_000, 1))
    tests = CurrentTests(ref)
    for s in range(0, len(cur), 4096):
        tests.update(cur[s : s + 4096])
    got = tests.column(0, "x", 0.05)
    assert got.method == KS
    assert got.score == pytest.approx(stats.ks_2samp(ref[:, 0], cur[:, 0])[1], rel=1e-12)


def test_rescored_outputs_judged_by_their_own_reference_size():
    rng = np.random.default_rng(4)
    ref = np.round(rng.beta(2, 3, (3000, 2)) * 16) / 16
    cur = np.round(rng.beta(2, 3, (2000, 2)) * 16) / 16

    def feats(x):
        flat = pa.array(x.astype(np.float32).reshape(-1))
        yield pa.record_batch({"features": pa.FixedSizeListArray.from_arrays(flat, 2)})

    ref_out = ModelOutputs(rng.integers(0, 3, 600), rng.random(600))
    cur_out = ModelOutputs(rng.integers(0, 3, 400), rng.random(400))
    v = compute_drift_streaming(feats(ref), feats(cur), CLASSES, outputs=(ref_out, cur_out))
    assert v.rule == "distance" and v.columns[0].method == WASSERSTEIN  # 3000 feature rows
    conf = v.columns[-1]  # 600 re-scored rows: K-S, as Evidently would on those rows
    assert conf.method == KS
    assert conf.score == stats.ks_2samp(ref_out.confidence, cur_out.confidence)[1]
    assert v.prediction.method == CHISQUARE


def test_stattest_is_checked():
    x = np.zeros((5, 1))
    p, c = np.zeros(5, dtype=int), np.full(5, 0.9)
    with pytest.raises(ValueError, match="stattest = 'exact'"):
        compute_drift(x, x, p, p, c, c, 3, stattest="exact")
    with pytest.raises(ValueError, match="p_value = 1.5"):
        compute_drift(x, x, p, p, c, c, 3, p_value=1.5)


def test_doctests():
    import curation.drift_verdict

    assert doctest.testmod(dp).failed == 0
    assert doctest.testmod(curation.drift_verdict).failed == 0
