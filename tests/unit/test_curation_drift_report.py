"""The Evidently adapter: files written, drift flagged, same scores as curation.drift."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from curation.drift import compute_drift
from curation.drift_report import frames_for_report, summarize, write_report

N = 1500  # > 1000 reference rows: Evidently picks Wasserstein / Jensen-Shannon, as curation.drift


def windows(shift: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref_x = rng.normal(size=(N, 4)).astype(np.float32)
    cur_x = rng.normal(size=(N, 4)).astype(np.float32)
    ref_x[:, 3] = 0  # a constant column, like a digit's border pixel
    cur_x[:, 3] = 0
    cur_x[:, :3] += shift
    ref_p = rng.integers(0, 10, N)
    cur_p = rng.integers(0, 10, N)
    if shift:
        cur_p[: N // 4] = 7
    ref_c = rng.uniform(0.5, 1.0, N)
    cur_c = rng.uniform(0.5 - shift / 4, 1.0 - shift / 4, N)
    return ref_x, cur_x, ref_p, cur_p, ref_c, cur_c


def test_frames_for_report_columns():
    frame = frames_for_report(np.zeros((3, 2), np.float32), [1, 2, 3], np.ones(3), ["px0", "px1"])
    assert list(frame.columns) == ["px0", "px1", "pred", "confidence"]
    assert frame["pred"].tolist() == ["1", "2", "3"]
    assert frame["px0"].dtype == np.float64
    with pytest.raises(ValueError, match="one value per row"):
        frames_for_report(np.zeros((3, 2)), [1, 2], np.ones(3))
    with pytest.raises(ValueError, match="reserved"):
        frames_for_report(np.zeros((3, 1)), [1, 2, 3], np.ones(3), ["confidence"])


def test_summarize_without_tests_uses_thresholds():
    snapshot = {
        "metrics": [
            {
                "config": {"type": "evidently:metric_v2:DriftedColumnsCount", "drift_share": 0.5},
                "value": {"count": 1.0, "share": 0.5},
            },
            {
                "config": {
                    "type": "evidently:metric_v2:ValueDrift",
                    "column": "a",
                    "method": "Wasserstein distance (normed)",
                    "threshold": 0.1,
                },
                "value": 0.3,
            },
            {
                "config": {
                    "type": "evidently:metric_v2:ValueDrift",
                    "column": "b",
                    "method": "K-S p_value",
                    "threshold": 0.05,
                },
                "value": 0.2,
            },
        ]
    }
    s = summarize(snapshot)
    assert s["dataset_drift"] and s["drifted_columns"] == ["a"]
    assert s["per_column"] == {"a": 0.3, "b": 0.2}


@pytest.mark.slow
def test_report_flags_drift_and_matches_numpy(tmp_path):
    ref_x, cur_x, ref_p, cur_p, ref_c, cur_c = windows(shift=0.8)
    ref = frames_for_report(ref_x, ref_p, ref_c)
    cur = frames_for_report(cur_x, cur_p, cur_c)
    html, js = tmp_path / "r" / "drift.html", tmp_path / "r" / "drift.json"
    summary = write_report(ref, cur, html, js, sample_rows=None)

    assert summary["dataset_drift"] is True
    assert set(summary["drifted_columns"]) == {"f0", "f1", "f2", "pred", "confidence"}
    assert summary["drift_share"] == pytest.approx(5 / 6)
    assert summary["n_reference"] == N and summary["n_current"] == N

    # the same statistics on the same rows: the same scores and the same verdict
    verdict = compute_drift(ref_x, cur_x, ref_p, cur_p, ref_c, cur_c, n_classes=10)
    numpy_scores = {c.column: c.score for c in (*verdict.columns, verdict.prediction)}
    assert summary["per_column"] == pytest.approx(numpy_scores, rel=1e-6, abs=1e-9)
    assert set(verdict.drifted_columns) == set(summary["drifted_columns"])
    assert verdict.dataset_drift == summary["dataset_drift"]

    assert html.stat().st_size > 100_000
    text = html.read_text()
    assert not re.search(r"<script[^>]+src=[\"']?https?:", text), (
        "HTML must not load remote scripts"
    )
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text), "HTML must not load remote styles"
    saved = json.loads(js.read_text())
    assert {m["config"]["type"].rsplit(":", 1)[-1] for m in saved["metrics"]} >= {
        "DriftedColumnsCount",
        "ValueDrift",
    }


@pytest.mark.slow
def test_clean_windows_do_not_drift_and_sampling_is_seeded(tmp_path):
    ref_x, cur_x, ref_p, cur_p, ref_c, cur_c = windows(shift=0.0, seed=1)
    ref = frames_for_report(ref_x, ref_p, ref_c)
    cur = frames_for_report(cur_x, cur_p, cur_c)
    a = write_report(ref, cur, tmp_path / "a.html", tmp_path / "a.json", sample_rows=1200, seed=3)
    assert a["dataset_drift"] is False
    assert a["drifted_columns"] == []
    assert a["n_reference"] == 1200 and a["n_current"] == 1200
    b = write_report(ref, cur, tmp_path / "b.html", tmp_path / "b.json", sample_rows=1200, seed=3)
    assert a["per_column"] == b["per_column"]


def test_mismatched_frames_are_named(tmp_path):
    ref = pd.DataFrame({"a": [1.0], "b": [2.0]})
    cur = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ValueError, match=r"columns \['b'\] are in only one"):
        write_report(ref, cur, tmp_path / "x.html", tmp_path / "x.json")
