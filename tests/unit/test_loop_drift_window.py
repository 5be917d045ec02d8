"""The engine's drift check for a model served elsewhere: no loopwright champion, classes from config,
the log compared with an earlier window of itself (by time or by model_version), outputs as
logged; waiting reasons say what to do."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import flows.loop.drift as dc
from curation.drift import compute_drift
from curation.drift_rules import DriftRules
from flows.config import Config, TaskConfig
from flows.loop.drift_outcome import markdown
from flows.loop.engine import Loop
from storage.home import DataHome
from storage.prediction_log import PredictionLog, make_batch
from tests.unit.test_curation_drift_pvalues import CLASSES, wine_traffic

T0 = datetime(2026, 5, 1, tzinfo=UTC)
WEEK = T0 + timedelta(days=7)


traffic = wine_traffic


def log(home, prefix, n, seed, start, version="served-1", shift=0.0, every=timedelta(minutes=5)):
    x, probs = traffic(n, seed, shift)
    table = make_batch(
        request_ids=[f"{prefix}{i:04d}" for i in range(n)], features=x, probs=probs,
        classes=CLASSES, model_version=version, ts=[start + i * every for i in range(n)],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)
    return x, probs


def runtime(home: DataHome, **drift) -> Loop:
    base = DriftRules(reference="window", reference_rows=300, window_rows=200, html_report="never")
    cfg = replace(
        Config(), task=TaskConfig(plugin="", classes=tuple(CLASSES)), drift=replace(base, **drift)
    )
    return Loop(cfg, home)


@pytest.fixture
def home(tmp_path) -> DataHome:
    """A week of clean traffic (300 rows), then 250 clean rows, then 250 shifted rows."""
    home = DataHome(tmp_path / "home")
    log(home, "ref", 300, 1, T0)
    log(home, "now", 250, 2, WEEK)
    return home


def test_time_window_reference_verdict_equals_the_exact_statistics(home):
    rt = runtime(home, reference_end=WEEK.isoformat())
    verdict = dc.check(rt)
    assert verdict["status"] == "ok" and not verdict["dataset_drift"]
    assert verdict["champion"] is None and verdict["rule"] == "p_value"
    ref = verdict["reference"]
    assert ref["kind"] == "window" and ref["rows"] == 300 and ref["rescored"] == 0
    assert ref["what"] == f"rows before {WEEK.isoformat()}"
    assert verdict["current"]["rows"] == 200
    # the same rows in memory: the first 300 and the latest 200 (logged outputs, no model)
    rx, rprobs = traffic(300, 1)
    cx, cprobs = traffic(250, 2)
    cx, cprobs = cx[-200:], cprobs[-200:]
    exact = compute_drift(rx, cx, rprobs.argmax(1), cprobs.argmax(1), rprobs.max(1),
                          cprobs.max(1), 3, class_names=CLASSES)  # fmt: skip
    for got, want in zip(verdict["columns"], exact.columns, strict=True):
        assert (got["method"], got["drifted"]) == (want.method, want.drifted)
        assert got["score"] == pytest.approx(want.score, rel=1e-5)  # logged as float32
    assert verdict["prediction"]["score"] == pytest.approx(exact.prediction.score, rel=1e-9)


def test_shifted_traffic_drifts_against_the_window(home):
    log(home, "late", 250, 3, WEEK + timedelta(days=3), shift=0.8)
    verdict = dc.check(runtime(home, reference_end=WEEK.isoformat()))
    assert verdict["status"] == "drift" and verdict["dataset_drift"]
    assert {f"f{j}" for j in range(8)} <= set(verdict["drifted_columns"])
    assert "by p-value tests" in markdown(verdict)
    assert "Reference: rows before" in markdown(verdict)


def test_model_version_reference(home):
    log(home, "v2-", 250, 4, WEEK + timedelta(days=3), version="served-2", shift=0.8)
    verdict = dc.check(runtime(home, reference_model_version="served-1"))
    assert verdict["reference"]["what"] == "rows of model_version served-1"
    assert verdict["reference"]["rows"] == 300  # a sample of at most reference_rows (of 550)
    assert verdict["status"] == "drift"  # the latest 200 rows of served-2


def test_first_rows_of_the_log_when_no_bounds_are_set(home):
    verdict = dc.check(runtime(home))  # the first 300 rows vs the latest 200 after them
    assert verdict["status"] == "ok" and verdict["reference"]["rows"] == 300
    assert verdict["reference"]["to"].startswith("2026-05-02 00:55")  # row 300, 5 min apart


def test_waiting_reasons_say_what_to_do(home):
    empty = dc.check(runtime(home, reference_start="2026-01-01", reference_end="2026-02-01"))
    assert empty["status"] == "waiting"
    assert empty["reason"] == (
        "reference window has 0 rows (rows between 2026-01-01T00:00:00+00:00 and "
        "2026-02-01T00:00:00+00:00): log predictions there, or change [drift] "
        "reference_start / reference_end / reference_model_version"
    )
    short = dc.check(runtime(home, reference_end=WEEK.isoformat(), window_rows=400))
    assert short["status"] == "waiting"
    assert short["reason"].startswith(
        f"the current window has 250 rows from {WEEK.isoformat()} on (400 needed"
    )
    few = dc.check(runtime(home, reference_rows=600, window_rows=100))
    assert few["reason"].startswith(
        "the log has 550 champion rows; the reference is its first 600 ([drift] reference_rows)"
    )
    after = dc.check(runtime(home, reference_rows=500, window_rows=100))
    assert after["reason"].startswith("the current window has 50 rows from 2026-05-08T16:35")
    assert after["reason"].endswith("lower [drift] reference_rows or window_rows")
    state = json.loads((home.state / "last_drift.json").read_text())
    assert state["status"] == "waiting"


def test_no_champion_says_how_to_watch_a_model_served_elsewhere(home):
    verdict = dc.check(runtime(home, reference="champion"))
    assert verdict["status"] == "waiting"
    assert 'set [drift] reference = "window"' in verdict["reason"]


def test_unknown_logged_classes_are_named(tmp_path):
    home = DataHome(tmp_path / "home")
    log(home, "ref", 300, 1, T0)
    log(home, "now", 250, 2, WEEK)
    rt = runtime(home, reference_end=WEEK.isoformat())
    other = replace(rt.cfg, task=TaskConfig(plugin="", classes=("a", "b", "c")))
    with pytest.raises(ValueError, match="predicted classes outside"):
        dc.check(Loop(other, home))


def test_real_report_in_window_mode(home):
    verdict = dc.check(runtime(home, reference_end=WEEK.isoformat(), html_report="always",
                               report_columns=4, report_sample_rows=150))  # fmt: skip
    assert verdict["report_written"]
    assert verdict["report_why"] == "html_report = always"
    ev = verdict["evidently"]
    assert ev["n_reference"] == 150 and ev["n_current"] == 150 and len(ev["features_shown"]) == 4
    assert set(ev["methods"].values()) <= {"K-S p_value", "chi-square p_value", "Z-test p_value"}
