"""`curate` queues only rows a labeler can see: never a row with no input (nor input_uri, for
tasks that can show one), never leaving the data home changed when nothing can be queued
(rerunning used to queue 20 more rows each time, 120 after six tries, then fail in render);
monitor-only tasks (classes from config) send what was logged: the input or its URI, and the
logged scores."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import flows.curate as curate_module
from flows.config import Config, CurationConfig, TaskConfig
from flows.curate import curate_flow, pick, select_samples, send_to_labelstudio
from flows.runtime import Runtime
from retrain.digits.task import TASK
from storage.home import DataHome
from storage.prediction_log import PredictionLog, make_batch
from storage.queue_log import QueueLog
from tests.support import write_config

CLASSES = ["class_0", "class_1", "class_2"]
DIGITS = [str(d) for d in range(10)]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def log(home, ids, classes, start=0, inputs=None, uris=None):
    probs = np.random.default_rng(start).dirichlet(np.ones(len(classes)), len(ids))
    table = make_batch(
        request_ids=ids, features=np.zeros((len(ids), 13)), probs=probs, classes=classes,
        model_version="served-elsewhere-3", inputs=inputs, input_uris=uris,
        ts=[T0 + timedelta(minutes=start + i) for i in range(len(ids))],
    )  # fmt: skip
    PredictionLog(home).append(table, classes)


def monitor_runtime(home: DataHome, **curation) -> Runtime:
    cfg = replace(
        Config(),
        task=TaskConfig(plugin="", classes=tuple(CLASSES)),
        curation=replace(CurationConfig(window_rows=100), **curation),
    )
    return Runtime(cfg, home)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the data home with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_rows_without_an_input_are_never_picked_and_are_counted(tmp_path):
    home = DataHome(tmp_path / "home")
    log(home, [f"bare{i:02d}" for i in range(30)], DIGITS)
    log(home, [f"png{i}" for i in range(5)], DIGITS, start=40,
        inputs=[TASK.encode_input(np.zeros((8, 8)))] * 5)  # fmt: skip
    rt = Runtime(replace(Config(), curation=CurationConfig(window_rows=100)), home)
    picks = pick(rt, 20, seed=0)
    assert sorted(picks["request_id"].to_pylist()) == [f"png{i}" for i in range(5)]
    assert picks.schema.metadata[b"not_shown"] == b"30"
    assert picks.schema.metadata[b"eligible"] == b"5"
    # digits cannot show a URI: a row with only input_uri is not shown either
    log(home, ["uri-only"], DIGITS, start=60, uris=["s3://bucket/x.png"])
    assert "uri-only" not in pick(rt, 20, seed=0)["request_id"].to_pylist()


def test_curate_with_nothing_to_show_leaves_the_home_unchanged(tmp_path, capsys, monkeypatch):
    checked = []  # Label Studio is still checked first (the real one: integration tests)
    monkeypatch.setattr(curate_module, "check_labelstudio", checked.append)
    home = DataHome(tmp_path / "home")
    log(home, [f"r{i:02d}" for i in range(40)], CLASSES)  # scores only, no input
    cfg = write_config(
        tmp_path / "lw.toml",
        home.root,
        extra=f'[task]\nplugin = ""\nclasses = {json.dumps(CLASSES)}\n',
    )
    home.ensure()
    before = snapshot(home.root)
    for seed in range(3):  # the reruns: each one used to queue 20 more rows
        out = curate_flow.fn(budget=20, seed=seed, config_path=str(cfg))
        assert out["selected"] == 0 and out["imported"] == 0
        assert snapshot(home.root) == before
    assert "40 candidate rows were not queued" in out["note"]
    assert "no input (bytes) or input_uri" in out["note"]
    assert "40 candidate rows were not queued" in capsys.readouterr().out
    assert len(checked) == 3


class FakeLabelStudio:
    """Records what curate would import."""

    def __init__(self) -> None:
        self.imported: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def existing_request_ids(self, project_id: int) -> dict[str, int]:
        return {t.request_id: i for i, t in enumerate(self.imported)}

    def import_tasks(self, project_id: int, tasks) -> dict[str, int]:
        self.imported.extend(tasks)
        return {t.request_id: i for i, t in enumerate(tasks)}


def test_monitor_only_task_sends_the_logged_input_or_uri_and_scores(tmp_path):
    home = DataHome(tmp_path / "home")
    rows = [json.dumps({"alcohol": 13.2 + i, "hue": 1.04}).encode() for i in range(4)]
    log(home, [f"j{i}" for i in range(4)], CLASSES, inputs=rows)
    log(home, ["u0", "u1"], CLASSES, start=10, uris=["https://img.example/a.png", "s3://b/c.csv"])
    log(home, [f"bare{i}" for i in range(6)], CLASSES, start=20)
    rt = monitor_runtime(home, audit_share=0.0)
    out = select_samples.fn(rt, 10, seed=0)
    assert out["selected"] == 6 and out["not_shown"] == 6
    fake = FakeLabelStudio()
    rt.labelstudio = lambda: fake
    sent = send_to_labelstudio.fn(rt, project_id=1)
    assert sent["imported"] == 6 and sent["unshowable_queued"] == 0
    shown = {t.request_id: t for t in fake.imported}
    assert set(shown) == {"j0", "j1", "j2", "j3", "u0", "u1"}
    assert "<th>alcohol</th><td>13.2</td>" in shown["j0"].image
    assert shown["u0"].image.startswith('<a href="https://img.example/a.png"')
    assert '<img src="https://img.example/a.png"' in shown["u0"].image
    assert "<img" not in shown["u1"].image  # a CSV link is shown as a link only
    probs = rt.queries.prediction_frame(
        ["j0"], columns=["probs", "pred", "confidence"]
    ).to_pylist()[0]
    top = max(range(3), key=lambda i: probs["probs"][i])
    assert (
        shown["j0"].extra["scores"].startswith(f"model: {CLASSES[top]} {probs['probs'][top]:.2f}")
    )
    assert shown["j0"].pred_label == probs["pred"]
    assert shown["j0"].score == pytest.approx(probs["confidence"])


def test_a_pick_that_cannot_be_shown_fails_before_anything_is_queued(tmp_path):
    home = DataHome(tmp_path / "home")
    log(home, ["junk"], CLASSES, inputs=[b"\x00\xff\xfe binary"])
    rt = monitor_runtime(home)
    with pytest.raises(ValueError, match="request_id 'junk': its logged input cannot be shown"):
        select_samples.fn(rt, 5, seed=0)
    assert rt.queries.queued().num_rows == 0


def test_rows_queued_earlier_without_an_input_are_skipped_and_counted(tmp_path):
    """A home where an older version queued rows with no input: they are not sent (nothing to
    show), the others are."""
    home = DataHome(tmp_path / "home")
    log(home, ["old0", "old1"], CLASSES)
    log(home, ["ok"], CLASSES, start=5, inputs=[b"a text input"])
    QueueLog(home).append(["old0", "old1", "ok"], "uncertainty")
    rt = monitor_runtime(home)
    fake = FakeLabelStudio()
    rt.labelstudio = lambda: fake
    sent = send_to_labelstudio.fn(rt, project_id=1)
    assert [t.request_id for t in fake.imported] == ["ok"]
    assert sent["unshowable_queued"] == 2
    assert "request_id 'old0' has no input or input_uri logged" in sent["unshowable_examples"][0]


def test_sync_labels_does_not_ask_to_reimport_what_nobody_can_see(tmp_path):
    from flows.sync_labels import pull

    home = DataHome(tmp_path / "home")
    log(home, ["old0"], CLASSES)  # queued by an older version without an input
    log(home, ["gone"], CLASSES, start=5, inputs=[b"a text input"])  # its task was deleted
    QueueLog(home).append(["old0", "gone"], "uncertainty")
    rt = monitor_runtime(home)

    class Exported(FakeLabelStudio):
        def export_annotations(self, project_id: int) -> list:
            return []

    rt.labelstudio = Exported
    out = pull.fn(rt, project_id=1)
    assert out["unshowable_queued"] == 1 and out["missing_tasks"] == 1
    assert len(out["problems"]) == 1 and "'gone' is queued for labeling" in out["problems"][0]
