"""The `rollout` flow and command under a real Prefect server: start, one analysis step that
advances on good evidence (the flow reads the wall clock), and the status the command prints."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.rollout import rollout_flow
from storage.routing import read_routing
from tests.rollout_support import both_arms, make_loop

pytestmark = pytest.mark.integration


def test_rollout_flow_starts_steps_and_reports(tmp_path, prefect_harness, monkeypatch):
    monkeypatch.setenv("LOOPWRIGHT_ROLLOUT__STATS_URL", "off")
    monkeypatch.setenv("LOOPWRIGHT_ROLLOUT__MIN_PREDICTIONS", "50")
    loop = make_loop(tmp_path / "home")
    home = str(loop.home.root)
    started = rollout_flow(version="v0002", home=home)
    assert started["state"] == "running" and read_routing(loop.home).canary_weight == 0.05
    # 100 rows per arm, 1 ms apart, just after the start: in the window of the next step
    t = datetime.fromisoformat(started["started"]) + timedelta(milliseconds=1)
    both_arms(loop, t, "f", canary_acc=0.9, champ_acc=0.9, spacing=timedelta(milliseconds=1))
    time.sleep(0.2)
    out = rollout_flow(home=home)
    assert out["analysis"]["numbers"]["canary_predictions"] == 100
    assert out["analysis"]["decision"] == "advance" and out["weight"] == 0.25
    assert read_routing(loop.home).canary_weight == 0.25
    result = CliRunner().invoke(app, ["rollout", "status", "--home", home, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["state"], info["weight"], info["canary"]) == ("running", 0.25, "v0002")
    step = info["history"][0]["steps"][0]
    assert (step["weight"], step["decision"], step["exposure"]) == (0.05, "advance", 100)
