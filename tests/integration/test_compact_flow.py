"""The `compact` flow and the `loopwright compact` command, for real: Prefect flow runs (test
harness), Parquet parts on disk, the readers' answers before and after."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.queue_log import QueueLog
from storage.state import read_state
from tests.support import write_config

pytestmark = [pytest.mark.integration]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
STORAGE = {"compact_min_age_s": 0, "compact_grace_s": 0, "compact_min_parts": 2}


def fill(home: DataHome, parts: int) -> None:
    plog = PredictionLog(home)
    for k in range(parts):
        ids = [f"r{k:03d}-{i}" for i in range(5)]
        table = make_batch(
            request_ids=ids, features=np.zeros((5, 2)), probs=np.tile([0.6, 0.4], (5, 1)),
            classes=["a", "b"], model_version="v0001",
            ts=[T0 + timedelta(seconds=k * 5 + i) for i in range(5)],
        )  # fmt: skip
        plog.append(table, ["a", "b"])
        QueueLog(home).append([ids[0]], "audit")
        LabelLog(home).append([LabelEvent(ids[0], "a", "feedback", "u", ts=T0)], ["a", "b"])


def test_compact_flow_merges_every_log_and_keeps_the_answers(tmp_path, prefect_harness):
    from flows.compact import compact_flow

    home = DataHome(tmp_path / "home")
    cfg = write_config(tmp_path / "lw.toml", home.root, storage=STORAGE)
    fill(home, 6)
    q = Queries(home)
    before = (q.count_predictions(), q.recent_predictions(30).to_pylist(), q.pending_labels(),
              q.label_counts(), sorted(q.queued_ids()))  # fmt: skip
    out = compact_flow(config_path=str(cfg))
    assert {log: r["parts_merged"] for log, r in out["logs"].items()} == {
        "predictions": 6, "labels": 6, "queue": 6,
    }  # fmt: skip
    assert all(r["files_after"] == 1 for r in out["logs"].values())
    assert read_state(home, "last_compact")["logs"]["predictions"]["groups"] == 1
    after = (q.count_predictions(), q.recent_predictions(30).to_pylist(), q.pending_labels(),
             q.label_counts(), sorted(q.queued_ids()))  # fmt: skip
    assert after == before


def test_compact_command_prints_the_report_and_refuses_an_unknown_log(tmp_path, prefect_harness):
    from flows.cli import app

    home = DataHome(tmp_path / "home")
    cfg = write_config(tmp_path / "lw.toml", home.root, storage=STORAGE)
    fill(home, 3)
    runner = CliRunner()
    res = runner.invoke(app, ["compact", "--log", "predictions", "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)["logs"]
    assert list(report) == ["predictions"] and report["predictions"]["parts_merged"] == 3
    assert Queries(home).count_predictions() == 15
    bad = runner.invoke(app, ["compact", "--log", "seed", "--config", str(cfg)])
    assert bad.exit_code == 1 and "cannot be compacted" in bad.output
