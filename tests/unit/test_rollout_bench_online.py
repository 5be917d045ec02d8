"""`flows.bench_online` end to end on the tiny scenario: the real rollouts and a live-worse
candidate go through the engine's rollout stage, and the records add up."""

from __future__ import annotations

import pytest

from evaluation.rollout_outcomes import live_worse_summary
from flows.bench_online import run_online
from tests.support import DEMO_TABLES, write_config

pytestmark = pytest.mark.slow


def test_tiny_online_run_records_real_and_live_worse_rollouts(tmp_path):
    tables = {k: dict(v) for k, v in DEMO_TABLES.items()}  # tiny's 50-row batches
    cfg = write_config(tmp_path / "lw.toml", tmp_path / "home", **tables)
    run = run_online("scenarios/tiny.toml", 3, str(cfg), str(tmp_path / "root"), 1, 2)
    assert run["overrides"]["rollout.enabled"] is True
    real = [r for r in run["rollouts"] if r["kind"] == "real"]
    worse = [r for r in run["rollouts"] if r["kind"] == "live-worse"]
    assert real, run["rollouts"]  # tiny's rotation makes the loop retrain and roll out
    for r in run["rollouts"]:
        assert r["outcome"] in ("promoted", "rolled_back", "aborted", "running")
        assert r["served"] == 50 * r["batches"]
        assert 0 <= r["canary_predictions"] <= r["served"]
        assert len(r["decisions"]) == len(r["weights"])
    for r in worse:  # after a real promotion: fine-tuned without the newest phase's rows
        assert r["rows_dropped"] > 0 and r["base"] in ("first", "champion")
        assert isinstance(r["gate_passed"], bool)
    assert live_worse_summary(worse)["candidates"] == len(worse)
    assert not (tmp_path / "root" / "jobs").exists() or not any(
        (tmp_path / "root" / "jobs").iterdir()
    )
