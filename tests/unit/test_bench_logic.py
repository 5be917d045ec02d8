"""The bench scripts' own logic: verdict comparison, demo stage summary, synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import synth
from bench.demo_bench import summarize
from bench.drift_bench import compare
from curation.drift import compute_drift


def test_compare_counts_mismatched_verdicts_and_methods():
    ref, cur = synth.window(3000, 1, False), synth.window(3000, 2, True)
    v = compute_drift(ref.features, cur.features, ref.pred, cur.pred, ref.confidence,
                      cur.confidence, n_classes=synth.N_CLASSES)  # fmt: skip
    columns = (*v.columns, v.prediction)
    summary = {
        "drifted_columns": [c.column for c in columns if c.drifted and c.column != "f4"],
        "per_column": {c.column: c.score + 1e-9 for c in columns},
        "methods": {
            c.column: "Wasserstein distance (normed)"
            if c.method == "wasserstein_normed"
            else "Jensen-Shannon distance"
            for c in columns
        },  # fmt: skip
        "dataset_drift": v.dataset_drift,
        "n_drifted": v.n_drifted - 1,
    }
    summary["methods"]["f5"] = "K-S p_value"
    out = compare(v, summary)
    assert out["columns"] == 66
    assert out["verdict_mismatches"] == (["f4"] if "f4" in v.drifted_columns else [])
    assert out["method_mismatches"] == ["f5"]
    assert out["max_abs_score_diff"] == pytest.approx(1e-9)


def test_synthetic_windows_have_every_column_kind():
    w = synth.window(2000, 0, True)
    assert w.features.shape == (2000, 64) and w.features.dtype == np.float32
    for j in synth.CONSTANT:
        assert (w.features[:, j] == 0).all()
    for j in synth.FEW_VALUES:
        assert len(np.unique(w.features[:, j])) <= 3
    assert len(np.unique(w.features[:, 20])) <= 17  # grey levels
    assert len(np.unique(w.features[:, 60])) > 1000  # continuous
    t = synth.prediction_table(10, 0, synth.day(0), False, id_offset=5)
    assert t["request_id"].to_pylist()[0] == "r0000000005"
    probs = np.array(t["probs"].to_pylist())
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(t["confidence"].to_numpy(), probs.max(axis=1))


def test_demo_summary_shares(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps({"stage_seconds": {"a": 30.0, "b": 10.0}, "seconds": 50.0,
                                "scenario": "s", "batches": 3}))  # fmt: skip
    out = summarize(path)
    assert out["total_seconds"] == 50.0 and out["under_goal"]
    assert out["stages"]["a"] == {"seconds": 30.0, "share": 0.6}
    assert out["unaccounted_seconds"] == 10.0
