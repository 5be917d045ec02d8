"""The drift check's label-free estimate fed from a real data home (flows/loop/estimate.py):
only the champion's own audit rows calibrate it, the window is the rows it logged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from evaluation.estimate import EstimateRules
from flows.config import Config
from flows.loop.estimate import estimate
from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.queue_log import QueueLog

CLASSES = ["a", "b"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def log(home, prefix, confs, version, start, attrs=None, role="champion"):
    n = len(confs)
    probs = np.array([[c, 1 - c] for c in confs])  # predicted "a" at confidence c
    PredictionLog(home).append(
        make_batch(
            request_ids=[f"{prefix}{i:03d}" for i in range(n)], features=np.zeros((n, 2)),
            probs=probs, classes=CLASSES, model_version=version, role=role,
            ts=[T0 + timedelta(seconds=start + i) for i in range(n)],
            attrs=attrs or [{} for _ in range(n)],
            inputs=[str(c).encode() for c in confs],  # what the fake champion re-scores
        ),
        CLASSES,
    )  # fmt: skip
    return [f"{prefix}{i:03d}" for i in range(n)]


def label(home, ids, right, source="labelstudio"):
    events = [
        LabelEvent(r, "a" if ok else "b", source, "ann") for r, ok in zip(ids, right, strict=True)
    ]
    LabelLog(home).append(events, classes=CLASSES)


@pytest.fixture
def loop(tmp_path):
    home = DataHome(tmp_path / "home")
    # an earlier champion, audited as always wrong: not the champion's calibration
    old = log(home, "old", [0.9] * 20, "v0000", 0)
    QueueLog(home).append(old, "audit")
    label(home, old, [False] * 20)
    # the champion: 20 audit rows at 0.6 (12 right), 20 at 0.9 (18 right)
    lo = log(home, "lo", [0.6] * 20, "v0001", 100)
    hi = log(home, "hi", [0.9] * 20, "v0001", 200)
    QueueLog(home).append(lo + hi, "audit")
    label(home, lo, [True] * 12 + [False] * 8)
    label(home, hi, [True] * 18 + [False] * 2)
    # 10 uncertainty picks at 0.6, all wrong: a biased sample, never used to calibrate
    unc = log(home, "unc", [0.6] * 10, "v0001", 300)
    QueueLog(home).append(unc, "uncertainty")
    label(home, unc, [False] * 10)
    # 50 unlabeled rows on device b, and shadow rows (not the champion's window)
    log(home, "new", [0.9] * 50, "v0001", 400, attrs=[{"device": "b"}] * 50)
    log(home, "sh", [0.6] * 30, "v0002", 500, role="shadow")
    cfg = replace(
        Config(),
        drift=replace(Config().drift, window_rows=100),
        estimate=EstimateRules(calibrate_on="audit", min_audit=30, bootstrap=50, min_slice_rows=20),
    )
    # the champion re-scores an input (its confidence, as text) as it logged it
    fb = log(home, "fb", [0.9] * 10, "v0001", 50)  # users' feedback, older than the window
    label(home, fb, [False] * 10, source="feedback")

    def predictor(version):
        return lambda x: np.c_[x, 1 - x]

    return SimpleNamespace(
        cfg=cfg, queries=Queries(home), home=home, task=SimpleNamespace(classes=CLASSES),
        registry=SimpleNamespace(meta=lambda v: {"dataset_version": "ds-0001"}),
        predictor=predictor, served_predictor=predictor,
        decode_inputs=lambda inputs: np.array([float(b.decode()) for b in inputs]),
    )  # fmt: skip


def test_estimate_from_the_champions_audit_rows(loop) -> None:
    est = estimate(loop, "v0001")
    assert est["reason"] is None
    assert est["n_audit"] == 40  # the champion's audit rows only
    assert est["n_rows"] == 100  # its 100 champion-role rows, not v0000's nor the shadow's
    # calibration: 0.6 -> 0.6, 0.9 -> 0.9; window: 30 rows at 0.6, 70 at 0.9
    assert est["accuracy"] == pytest.approx((30 * 0.6 + 70 * 0.9) / 100)
    assert est["low"] <= est["accuracy"] <= est["high"]
    assert list(est["by_slice"]) == ["device=b"]
    assert est["by_slice"]["device=b"]["accuracy"] == pytest.approx(0.9)
    assert est["by_slice"]["device=b"]["n_rows"] == 50


def test_too_few_audit_labels_of_the_champion(loop) -> None:
    est = estimate(loop, "v0002")  # a fresh champion: no audit labels of its own yet
    assert est["accuracy"] is None and est["n_audit"] == 0
    assert "min_audit" in est["reason"]


def test_disabled(loop) -> None:
    loop.cfg = replace(loop.cfg, estimate=EstimateRules(enabled=False))
    assert estimate(loop, "v0001")["reason"] == "[estimate] enabled = false"


def test_held_out_calibration_rescored_by_the_champion(loop, monkeypatch):
    """Every labeled row it did not train on (here: all but the earlier champion's rows),
    uncertainty picks included, feedback left out, re-scored by the champion."""
    import storage.datasets

    trained = [f"old{i:03d}" for i in range(20)]
    monkeypatch.setattr(
        storage.datasets, "load_dataset", lambda home, ds: SimpleNamespace(train_ids=trained)
    )
    loop.cfg = replace(loop.cfg, estimate=replace(loop.cfg.estimate, calibrate_on="held_out"))
    est = estimate(loop, "v0001")
    # 0.6: 12 right of 20 audit + 10 uncertainty rows = 0.4; 0.9: 18 of 20 = 0.9
    assert est["n_audit"] == 50
    assert est["n_rows"] == 100
    assert est["accuracy"] == pytest.approx((30 * 0.4 + 70 * 0.9) / 100)
