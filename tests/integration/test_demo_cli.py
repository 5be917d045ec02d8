"""The whole loop, as a user runs it: `loopwright demo` starts its own Label Studio and
Prefect server (on free ports), replays a tiny drift scenario, and must recover.

The demo runs once per session (`demo_run`, tests/conftest.py); the secrets tests search
the same run."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.support import run_loopwright

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_recovers_from_drift(demo_run):
    proc = demo_run.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(demo_run.summary.read_text())
    assert summary["champion_before"] == "v0001"
    assert summary["champion_after"] != "v0001"
    assert summary["accuracy_after_retraining"] > summary["accuracy_under_drift"] + 0.05
    assert summary["labels_spent"] > 0
    assert Path(summary["report_card"]).is_file()
    assert "accuracy after retraining" in proc.stdout


def test_status_json_describes_the_demo_home(demo_run):
    proc = run_loopwright(
        "status", "--json", "--config", str(demo_run.cfg), env=demo_run.env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    for key in ("champion", "challenger", "history", "last_gate", "pending_labels"):
        assert key in status
    assert status["champion"] != "v0001"
    assert status["history"][0]["to"] == "v0001"
    assert isinstance(status["last_gate"]["promote"], bool)
    # issue 10's contract: the demo runs online and at least one rollout reached 100 %
    outcomes = [r["outcome"] for r in status["rollout"]["history"]]
    assert "promoted" in outcomes, status["rollout"]
    promoted = next(r for r in status["rollout"]["history"] if r["outcome"] == "promoted")
    assert promoted["steps"] and promoted["steps"][-1]["decision"] == "advance"
    assert all({"weight", "decision"} <= set(s) for s in promoted["steps"])


def test_demo_leaves_no_server_running(demo_run):
    for url in (
        f"http://127.0.0.1:{demo_run.ls_port}/health/",
        f"http://127.0.0.1:{demo_run.prefect_port}/api/health",
    ):
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)


def test_token_never_printed(demo_run):
    token = (demo_run.ls_dir / "token").read_text().strip()
    assert len(token) >= 16
    proc = demo_run.proc
    assert token not in proc.stdout and token not in proc.stderr
