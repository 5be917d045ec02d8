"""Curation a person drives, on a real data home without Prefect: `curate --like` (the
nearest logged rows by cosine, in DuckDB) and `log-feedback` (labels with source feedback,
thumbs-down rows queued first), and where feedback goes in a dataset (training only)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.labeling import FEEDBACK_FIRST
from curation.labelstudio_memory import InMemoryLabelStudio
from curation.similarity import cosine_nearest
from flows.config import Config
from flows.loop.engine import Loop
from flows.loop.feedback import log_feedback_file
from flows.loop.like import curate_like
from retrain.digits.task import TASK
from storage.datasets import create_dataset
from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PredictionLog, make_batch
from storage.queries_similar import nearest
from storage.queue_log import QueueLog

DIGITS = [str(d) for d in range(10)]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
PNG = TASK.encode_input(np.zeros((8, 8)))
ROWS = {  # request id -> features; "t" is the known failure
    "t": [1.0, 0.0],
    "n1": [2.0, 0.1],
    "n2": [1.0, 1.0],
    "n3": [0.0, 1.0],
    "n4": [-1.0, 0.0],
    "q": [1.0, 0.05],  # queued already
    "l": [1.0, 0.02],  # labeled already
    "z": [0.0, 0.0],  # no direction: cosine undefined
    "noin": [1.0, 0.01],  # no input: nothing to show a labeler
}


def log(home, ids, features, start=0, role="champion", inputs=None):
    n = len(ids)
    probs = np.full((n, 10), 0.02)
    probs[:, 3] = 0.82  # predicted "3"
    PredictionLog(home).append(
        make_batch(
            request_ids=ids, features=np.asarray(features, dtype=np.float32), probs=probs,
            classes=DIGITS, model_version="v0001", role=role,
            ts=[T0 + timedelta(seconds=start + i) for i in range(n)],
            inputs=inputs if inputs is not None else [PNG] * n,
        ),
        DIGITS,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path) -> DataHome:
    home = DataHome(tmp_path / "home")
    shown = [r for r in ROWS if r != "noin"]
    log(home, shown, [ROWS[r] for r in shown])
    log(home, ["noin"], [ROWS["noin"]], start=50, inputs=[None])
    log(home, ["t#shadow"], [[1.0, 0.0]], start=60, role="shadow")
    QueueLog(home).append(["q"], "uncertainty")
    LabelLog(home).append([LabelEvent("l", "3", "labelstudio", "ann", ts=T0)], DIGITS)
    return home


@pytest.fixture
def loop(home) -> Loop:
    ls = InMemoryLabelStudio()
    return Loop(replace(Config()), home, labelstudio=lambda: ls)


def test_nearest_is_cosine_over_features_in_duckdb(loop):
    out = nearest(loop.queries, "t", 3, "input")
    assert out.column("request_id").to_pylist() == ["n1", "n2", "n3"]
    # the same as the in-memory rule on the candidates (not queued, labeled, hidden, itself)
    cand = ["n1", "n2", "n3", "n4", "z"]
    expect = cosine_nearest(np.array(ROWS["t"]), np.array([ROWS[r] for r in cand]), 3)
    assert [cand[i] for i, _ in expect] == ["n1", "n2", "n3"]
    got = out.column("score").to_pylist()
    assert got == pytest.approx([s for _, s in expect], abs=1e-4)
    assert got[1] == pytest.approx(np.sqrt(0.5))  # [1,0] vs [1,1]
    # without the showable rule, the row with no input is the nearest
    assert nearest(loop.queries, "t", 1).column("request_id").to_pylist() == ["noin"]


def test_unknown_request_id_is_an_error_naming_it(loop):
    with pytest.raises(StorageError, match="'nope' is not in the prediction log"):
        nearest(loop.queries, "nope", 3)
    with pytest.raises(StorageError, match="k = 0"):
        nearest(loop.queries, "t", 0)


def test_curate_like_queues_and_sends_with_the_reason(loop):
    out = curate_like(loop, "t", 2)
    assert [n["request_id"] for n in out["neighbours"]] == ["n1", "n2"]
    # imported: the 2 picks and "q", queued earlier and not in Label Studio yet
    assert out["selected"] == 2 and out["imported"] == 3
    queued = {r["request_id"]: r for r in loop.queries.queued().to_pylist()}
    assert queued["n1"]["reason"] == queued["n2"]["reason"] == "like:t"
    assert queued["n2"]["score"] == pytest.approx(np.sqrt(0.5), abs=1e-6)
    # a second run finds the next ones: what is queued is not sent twice
    again = curate_like(loop, "t", 2)
    assert [n["request_id"] for n in again["neighbours"]] == ["n3", "n4"]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_log_feedback_labels_and_thumbs_down(loop, tmp_path):
    f = write_jsonl(
        tmp_path / "fb.jsonl",
        [
            {"request_id": "n1", "label": "5"},
            {"request_id": "n2", "thumbs": "up"},  # confirms the prediction "3"
            {"request_id": "n3", "thumbs": "down"},
            {"request_id": "n4", "label": "3", "thumbs": "up"},
        ],
    )
    out = log_feedback_file(loop, f)
    assert out == {"rows": 4, "labels": 3, "thumbs_down_queued": 1, "thumbs_down_skipped": 0}
    labeled = loop.queries.labeled_examples().to_pylist()
    got = {r["request_id"]: (r["label"], r["source"]) for r in labeled}
    assert got["n1"] == ("5", "feedback") and got["n2"] == ("3", "feedback")
    assert got["n4"] == ("3", "feedback") and "n3" not in got
    (queued,) = [r for r in loop.queries.queued().to_pylist() if r["request_id"] == "n3"]
    assert queued["reason"] == "feedback"
    # the next curate sends it to Label Studio first in the queue
    from flows.loop.curate import send_to_labelstudio

    with loop.labelstudio() as ls:
        project = ls.ensure_project("p", "<View/>")
    send_to_labelstudio(loop, project)
    with loop.labelstudio() as ls:
        payloads = ls._project(project, "read").tasks.values()
    score = {t["data"]["request_id"]: t["predictions"][0]["score"] for t in payloads}
    assert score["n3"] == FEEDBACK_FIRST == min(score.values())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"request_id": "n2", "label": "x"}, "line 2: label 'x' is not a class"),
        ({"request_id": "nope", "label": "1"}, "line 2: request_id 'nope' is not in the"),
        ({"request_id": "n2", "thumbs": "meh"}, "line 2: thumbs = 'meh'"),
        ({"request_id": "n2"}, "line 2: request_id 'n2' has neither label nor thumbs"),
        ({"request_id": "n1", "label": "2"}, "line 2: request_id 'n1' is already on line 1"),
        ({"request_id": "n2", "label": "3", "thumbs": "down"}, "line 2: thumbs = 'down' contra"),
        ({"request_id": "n2", "labl": "3"}, "line 2: unknown field 'labl'"),
    ],
)
def test_a_bad_row_names_its_line_and_nothing_is_written(loop, tmp_path, row, message):
    f = write_jsonl(tmp_path / "fb.jsonl", [{"request_id": "n1", "label": "5"}, row])
    before = loop.queries.label_counts()
    with pytest.raises(ValueError, match=message):
        log_feedback_file(loop, f)
    assert loop.queries.label_counts() == before


def test_log_feedback_from_parquet(loop, tmp_path):
    path = tmp_path / "fb.parquet"
    pq.write_table(pa.table({"request_id": ["n1", "n3"], "label": ["7", None],
                             "thumbs": [None, "down"]}), path)  # fmt: skip
    out = log_feedback_file(loop, path)
    assert (out["labels"], out["thumbs_down_queued"]) == (1, 1)


def test_feedback_labels_train_never_test(tmp_path):
    """Feedback is not an unbiased sample: a dataset puts it in training, whatever the hash."""
    home = DataHome(tmp_path / "home")
    ids = [f"r{i:03d}" for i in range(200)]
    table = pa.table({"request_id": ids, "label": ["1"] * 200,
                      "source": ["feedback"] * 100 + ["labelstudio"] * 100})  # fmt: skip
    ds = create_dataset(home, table, "all", {}, None)
    assert not set(ds.test_ids) & set(ids[:100])
    assert 0 < len(ds.test_ids) < 100  # the Label Studio labels still split by hash


def test_the_commands(home, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    where = ["--home", str(home.root)]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"request_id": "n1", "label": "5"},
                                               {"request_id": "n2", "thumbs": "sideways"}])  # fmt: skip
    out = runner.invoke(app, ["log-feedback", "--input", str(bad), *where])
    assert out.exit_code == 1 and "line 2: thumbs = 'sideways'" in out.output
    good = write_jsonl(tmp_path / "ok.jsonl", [{"request_id": "n1", "label": "5"}])
    out = runner.invoke(app, ["log-feedback", "--input", str(good), "--json", *where])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["labels"] == 1
    out = runner.invoke(app, ["curate", "--like", "missing-id", "--k", "3", *where])
    assert out.exit_code == 1 and "'missing-id' is not in the prediction log" in out.output
