"""The engine's drift check on a real data home without Prefect: the streamed path gives the same verdict
as the exact in-memory one, re-scores a bounded sample, and writes the HTML report when told."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import flows.loop.drift as dc
import flows.loop.drift_outcome as outcome
from curation.drift import compute_drift
from curation.drift_rules import DriftRules, report_due
from evaluation.estimate import EstimateRules
from flows.config import Config
from flows.loop.engine import Loop
from retrain.digits.data import split_digits
from retrain.digits.task import TASK
from retrain.digits.transforms import rotate
from storage.datasets import create_dataset
from storage.home import DataHome
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.seed import write_seed

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
W = np.random.default_rng(0).normal(size=(64, 10))


class Registry:
    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def get(self, alias: str) -> str | None:
        return "v0001" if alias == "champion" else None

    def meta(self, version: str) -> dict:
        return {"dataset_version": self.dataset}


class Predictor:
    """A fixed linear model on the pixels; counts the rows it scores."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.rows += len(x)
        z = x.reshape(len(x), -1) @ W * 3
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def log_digits(home: DataHome, images: np.ndarray, start: int, prefix: str, role="champion"):
    inputs = [TASK.encode_input(img) for img in images]
    x = TASK.decode_inputs(inputs)
    n = len(x)
    table = make_batch(
        request_ids=[f"{prefix}{i:04d}" for i in range(n)], features=TASK.features(x),
        probs=Predictor()(x), classes=TASK.classes, model_version="v0000", role=role,
        ts=[T0 + timedelta(seconds=start + i) for i in range(n)], inputs=inputs,
    )  # fmt: skip
    PredictionLog(home).append(table, TASK.classes)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A seed the champion 'trained on', then 120 clean and 240 rotated champion rows (and
    shadow rows, which drift-check must ignore)."""
    home = DataHome(tmp_path_factory.mktemp("drift") / "home")
    split = split_digits(seed_rows=200, holdout_rows=50)
    write_seed(
        home, [f"seed-{i:04d}" for i in range(200)], TASK.features(split.seed_x[:, None]),
        [TASK.encode_input(img) for img in split.seed_x],
        [TASK.classes[int(y)] for y in split.seed_y],
    )  # fmt: skip
    ds = create_dataset(home, Queries(home).labeled_examples(), "all", {}, None)
    pool = split.pool_x[:360]
    log_digits(home, pool[:120], 0, "c")
    rotated = rotate(pool[120:], 40.0)
    log_digits(home, rotated, 1000, "r")
    log_digits(home, rotated[:50], 5000, "s", role="shadow")  # the latest rows: not champion
    return home, ds.id


def runtime(world, tmp_path, **drift) -> tuple[Loop, Predictor]:
    """A loop on the shared logs, with this test's own reports and state."""
    logs, ds_id = world
    home = DataHome(tmp_path / "home")
    home.root.mkdir(parents=True, exist_ok=True)
    for name in ("predictions", "seed", "labels", "datasets"):
        if not (home.root / name).exists():
            (home.root / name).symlink_to(logs.root / name)
    # the label-free estimate re-scores labeled rows too (its own tests: test_loop_estimate.py);
    # off here, so the counts below are the drift check's own re-scoring
    cfg = replace(
        Config(),
        drift=replace(DriftRules(reference_rows=150, window_rows=200), **drift),
        estimate=EstimateRules(enabled=False),
    )
    rt = Loop(cfg, home)
    predictor = Predictor()
    rt.__dict__["registry"] = Registry(ds_id)
    rt.predictor = lambda version: predictor
    return rt, predictor


@pytest.fixture
def reports(monkeypatch):
    """Evidently stands in by a stub (its own tests are elsewhere): records each call."""
    calls = []

    def fake(rt, run_id, verdict, ref_x, ref_out, cur_x, cur_out):
        path = rt.home.drift_reports / f"{run_id}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("<html/>")
        calls.append({"ref": len(ref_x), "cur": len(cur_x), "cur_out": cur_out.n})
        return {"html_path": str(path), "dataset_drift": None}

    monkeypatch.setattr(outcome, "write_human_report", fake)
    return calls


def test_streamed_verdict_equals_the_exact_in_memory_one(world, tmp_path, reports, monkeypatch):
    rt, predictor = runtime(world, tmp_path, html_report="never")
    monkeypatch.setattr(
        Queries, "recent_predictions", lambda *a, **k: pytest.fail("window loaded whole")
    )
    verdict = dc.check(rt)
    monkeypatch.undo()
    assert verdict["status"] == "drift" and verdict["dataset_drift"] is True
    assert verdict["current"]["rows"] == 200 and verdict["current"]["rescored"] == 200
    assert verdict["current"]["to"].startswith("2026-05-01 09:20:39")  # the last champion row
    # the old path: both windows in memory, decoded, re-scored whole by the champion
    ref = dc.reference_rows(rt, "v0001", 150)
    window = [f"r{i:04d}" for i in range(40, 240)]  # the latest 200 champion rows
    cur = Queries(rt.home).prediction_frame(window, columns=["input"])
    x_ref = TASK.decode_inputs(ref.column("input").to_pylist())
    x_cur = TASK.decode_inputs(cur.column("input").to_pylist())
    p_ref, p_cur = Predictor()(x_ref), Predictor()(x_cur)
    exact = compute_drift(
        TASK.features(x_ref), TASK.features(x_cur), p_ref.argmax(1), p_cur.argmax(1),
        p_ref.max(1), p_cur.max(1), n_classes=10,
    )  # fmt: skip
    assert predictor.rows == ref.num_rows + 200
    for got, want in zip(verdict["columns"], exact.columns, strict=True):
        assert (got["column"], got["method"], got["drifted"]) == (
            want.column, want.method, want.drifted,
        )  # fmt: skip
        assert got["score"] == pytest.approx(want.score, abs=1e-9)
    assert verdict["prediction"]["score"] == pytest.approx(exact.prediction.score, abs=1e-12)
    assert verdict["n_drifted"] == exact.n_drifted
    assert verdict["confidence_drop"] == pytest.approx(exact.confidence_drop)


def test_only_a_bounded_sample_is_rescored(world, tmp_path, reports):
    rt, predictor = runtime(world, tmp_path, rescore_rows=60, report_sample_rows=50)
    verdict = dc.check(rt)
    assert verdict["current"] == {**verdict["current"], "rows": 200, "rescored": 60}
    assert verdict["n_current"] == 200  # feature statistics over the whole window
    assert predictor.rows == verdict["reference"]["rows"] + 60
    other = runtime(world, tmp_path / "again", rescore_rows=60, report_sample_rows=50)[0]
    again = dc.check(other)
    assert again["prediction"] == verdict["prediction"]  # the sample is seeded
    assert reports[0]["cur"] == 60 and reports[0]["cur_out"] == 60


def test_html_report_on_change(world, tmp_path, reports):
    rt, _ = runtime(world, tmp_path)
    first = dc.check(rt)
    assert first["report_written"] and first["report_why"] == "first check of champion v0001"
    assert first["report_html"].endswith(".html") and len(reports) == 1
    second = dc.check(rt)
    assert not second["report_written"] and second["evidently"] is None
    assert second["report_html"] == first["report_html"]  # where the latest report is
    assert second["report_ts"] == first["ts"]
    assert "No Evidently report this time" in outcome.markdown(second)
    # the verdict flips drift -> ok: a new report
    looser = runtime(world, tmp_path, drift_share=1.0)[0]
    third = dc.check(looser)
    assert third["status"] == "ok" and third["report_written"]
    assert third["report_why"] == "verdict changed drift -> ok" and len(reports) == 2
    state = json.loads((rt.home.state / "last_drift.json").read_text())
    assert state["report_html"] == third["report_html"] != first["report_html"]


@pytest.mark.parametrize(("mode", "written"), [("always", [True, True]), ("never", [False] * 2)])
def test_html_report_always_and_never(world, tmp_path, reports, mode, written):
    rt, _ = runtime(world, tmp_path, html_report=mode)
    got = [dc.check(rt)["report_written"] for _ in range(2)]
    assert got == written and len(reports) == sum(written)
    if mode == "never":
        assert dc.check(rt)["report_html"] is None


def test_waits_for_a_full_window_and_keeps_the_latest_report(world, tmp_path, reports):
    rt, _ = runtime(world, tmp_path)
    first = dc.check(rt)
    short = runtime(world, tmp_path, window_rows=10_000)[0]
    verdict = dc.check(short)
    assert verdict["status"] == "waiting" and "360 recent rows (10000 needed)" in verdict["reason"]
    assert verdict["report_html"] == first["report_html"] and not verdict["report_written"]
    # a window larger than the re-scored sample: found short while streaming
    big = runtime(world, tmp_path, window_rows=400, rescore_rows=100, report_sample_rows=10)[0]
    verdict = dc.check(big)
    assert verdict["status"] == "waiting" and verdict["reason"] == "360 recent rows (400 needed)"


def test_report_decision_doctests():
    assert doctest.testmod(dc).failed == 0
    assert doctest.testmod(outcome).failed == 0
    assert report_due("on_change", None, "v2", "ok") == (True, "first check of champion v2")
    prev = {"champion": "v1", "status": "drift"}
    assert report_due("on_change", prev, "v2", "drift")[0]
    assert report_due("never", None, "v2", "ok") == (False, "html_report = never")


def test_window_sample_is_a_seeded_subset_of_the_role_window(world):
    q = Queries(world[0])

    def ids(**kw):
        batches = q.window_batches(200, role="champion", columns=["request_id"], **kw)
        return sorted(i for b in batches for i in b.column("request_id").to_pylist())

    window = ids()
    assert window == [f"r{i:04d}" for i in range(40, 240)]  # shadow rows are newer: not in it
    sample = ids(sample_rows=30, seed=0)
    assert len(sample) == 30 and set(sample) <= set(window)
    assert sample == ids(sample_rows=30, seed=0) != ids(sample_rows=30, seed=1)
    assert ids(sample_rows=500) == window


def test_real_report_shows_the_most_drifted_features(world, tmp_path):
    rt, _ = runtime(world, tmp_path, report_columns=3, report_sample_rows=100)
    verdict = dc.check(rt)
    shown = verdict["evidently"]["features_shown"]
    assert verdict["rule"] == "p_value"  # 150 reference rows: p-values, the smallest first
    top = sorted(verdict["columns"][:64], key=lambda c: c["score"])[:3]
    assert shown == [c["column"] for c in top]
    assert set(verdict["evidently"]["per_column"]) == {*shown, "pred", "confidence"}
    assert verdict["evidently"]["n_reference"] == 100 and verdict["evidently"]["n_current"] == 100
    html = rt.home.drift_reports / verdict["report_html"].split("/")[-1]
    assert html.is_file() and html.stat().st_size > 10_000


def test_the_reference_is_scored_once_per_champion(world, tmp_path, reports):
    """The champion's outputs on its training rows are fixed once it is: a loop re-scores
    only the current sample at the next check, and the verdict is the same."""
    rt, predictor = runtime(world, tmp_path, html_report="never")
    first = dc.check(rt)
    ref_rows = first["reference"]["rows"]
    assert predictor.rows == ref_rows + 200
    second = dc.check(rt)
    assert predictor.rows == ref_rows + 400  # the reference was not scored again
    assert second["columns"] == first["columns"] and second["prediction"] == first["prediction"]


def test_without_artifacts_no_report_file_is_written(world, tmp_path, reports):
    rt, _ = runtime(world, tmp_path)
    rt.artifacts = False
    verdict = dc.check(rt)
    assert verdict["status"] == "drift" and not verdict["report_written"]
    assert verdict["report_why"].startswith("artifacts are off") and reports == []
    assert not rt.home.drift_reports.exists() or not any(rt.home.drift_reports.iterdir())
    with_files = runtime(world, tmp_path / "files", html_report="never")[0]
    again = dc.check(with_files)
    assert {k: again[k] for k in ("columns", "prediction", "dataset_drift")} == {
        k: verdict[k] for k in ("columns", "prediction", "dataset_drift")
    }
