"""Parity: the demo (Prefect flows, labels through Label Studio's HTTP API) and the benchmark
(the engine in process, labels through the in-memory labeler) decide alike, batch by batch.

Why this test exists: the benchmark's figures describe what users run only if its loop is
the shipped loop. Both drivers call `flows.loop.round.run_round`; this compares what they
decided for the same scenario file, seed and config, exactly (no tolerance: training is
bit-for-bit repeatable on CPU at a fixed thread count, see tests/unit/test_retrain_training.py).
"""

from __future__ import annotations

import json

import pytest

from tests.support import run_loopwright

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUND_KEYS = {"batch", "trigger_fired", "trigger_kind", "retrained", "promoted", "labels_added",
              "rollout_decision", "canary_weight", "estimate"}  # fmt: skip


def test_demo_and_bench_decide_alike(demo_run, tmp_path):
    assert demo_run.proc.returncode == 0, demo_run.proc.stderr[-3000:]
    demo = json.loads(demo_run.summary.read_text())
    out = tmp_path / "bench.json"
    proc = run_loopwright(
        "bench", "loop", "--scenario", "scenarios/tiny.toml", "--seeds", "1",
        "--policies", "configured", "--workers", "1", "--config", str(demo_run.cfg),
        "--json", str(out), env=demo_run.env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bench = json.loads(out.read_text())
    (run,) = [r for r in bench["runs"] if r["policy"] == "configured"]

    assert demo["scenario"] == "tiny"
    assert run["seed"] == demo["seed"] == 3  # tiny.toml's seed: the default of both
    assert len(demo["rounds"]) == demo["batches"] == 4
    assert all(set(r) == ROUND_KEYS for r in demo["rounds"])
    # the scenario exercises the whole loop: labels arrive, a retrain runs and is promoted
    assert sum(r["labels_added"] for r in demo["rounds"]) > 0
    assert any(r["retrained"] for r in demo["rounds"])
    assert any(r["promoted"] for r in demo["rounds"])
    # online (DEMO_TABLES: rollout on): a candidate went through the rollout stage; the demo
    # judged the server's stats too, the bench has none, and their decisions still agree
    assert demo["online"] and "started" in [r["rollout_decision"] for r in demo["rounds"]]
    for d, b in zip(demo["rounds"], run["rounds"], strict=True):
        assert d == b, f"batch {d['batch']}: demo {d} != bench {b}"
