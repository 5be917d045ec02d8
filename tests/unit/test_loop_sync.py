"""The engine's sync stage with the labeler in process (`InMemoryLabelStudio`): each answer
once, a correction once more, and annotations that need a person fail the stage with one
line each, after every valid one is written (the flow reports them from the exception)."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from curation.label_sync import AnnotationProblems, disputed, problems_of
from curation.labelstudio_memory import InMemoryLabelStudio
from curation.rules import CurationRules
from flows.config import Config
from flows.loop.curate import curate
from flows.loop.engine import Loop
from flows.loop.sync import summary, sync
from retrain.digits.task import TASK
from storage.home import DataHome
from storage.label_log import LabelEvent
from storage.prediction_log import PredictionLog, make_batch
from storage.state import read_state

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def queued(tmp_path):
    """20 logged digit rows, 8 of them curated into the in-process labeler."""
    home = DataHome(tmp_path / "home").ensure()
    n = 20
    table = make_batch(
        request_ids=[f"r{i:02d}" for i in range(n)], features=np.zeros((n, 2)),
        probs=np.random.default_rng(0).dirichlet(np.ones(10), n), classes=TASK.classes,
        model_version="v0001", inputs=[TASK.encode_input(np.zeros((8, 8)))] * n,
        ts=[T0 + timedelta(minutes=i) for i in range(n)],
    )  # fmt: skip
    PredictionLog(home).append(table, TASK.classes)
    ls = InMemoryLabelStudio()
    cfg = replace(Config(), curation=CurationRules(window_rows=100))
    loop = Loop(cfg, home, labelstudio=lambda: ls)
    assert curate(loop, budget=8, seed=0)["imported"] == 8
    project_id = read_state(home, "labelstudio")["project_id"]
    return loop, ls, project_id


def test_each_answer_once_and_a_correction_once_more(queued):
    loop, ls, project_id = queued
    pending = ls.pending_tasks(project_id)
    for task_id, _ in pending[:5]:
        ls.annotate(task_id, "3", annotator="ann")
    first = sync(loop)
    assert first["new_labels"] == 5 and first["pending"] == 3 and first["exported"] == 5
    assert read_state(loop.home, "last_sync")["new_labels"] == 5
    assert sync(loop)["new_labels"] == 0
    ls.annotate(pending[0][0], "7", annotator="other")  # a second annotator disagrees
    again = sync(loop)
    assert again["new_labels"] == 1 and again["disputed"] == 1
    assert "1 request ids with disagreeing annotators" in summary(again)


def test_problems_fail_the_stage_after_the_valid_labels_are_written(queued):
    loop, ls, project_id = queued
    pending = ls.pending_tasks(project_id)
    ls.annotate(pending[0][0], "3")
    ls.annotate(pending[1][0], "cat")  # not a class of the task
    ls.delete_task(pending[2][0])  # a queued sample lost its task
    with pytest.raises(AnnotationProblems) as err:
        sync(loop)
    assert err.value.result["new_labels"] == 1
    assert err.value.result["rejected"]["unknown_label"] == 1
    assert len(err.value.problems) == 2
    assert "has label 'cat', not a class of the task" in str(err.value)
    assert "is queued for labeling but has no task" in str(err.value)
    assert read_state(loop.home, "last_sync") is None  # a partial sync is not a sync
    assert loop.queries.label_counts() == {"labelstudio": 1}
    copy = pickle.loads(pickle.dumps(err.value))  # Prefect keeps a failed run's exception
    assert str(copy) == str(err.value) and copy.problems == err.value.problems


class Ann:
    def __init__(self, request_id, label, cancelled=False, ann_id=1):
        self.request_id, self.label, self.was_cancelled = request_id, label, cancelled
        self.annotator, self.ts = "a@x", T0
        self.ls_task_id, self.ls_annotation_id = 10, ann_id


def test_problems_name_each_annotation_and_skip_cancelled():
    anns = [Ann("r1", "3"), Ann("r2", "3", cancelled=True, ann_id=2), Ann("r3", "", ann_id=3)]
    found = problems_of(anns, tuple("0123456789"), {"r1", "r2", "r3"})
    assert found == [
        "annotation 3 on task 10 (request_id 'r3') has an empty result: choose one class in "
        "Label Studio, or delete it"
    ]


def test_disputed_counts_annotators_latest_answers():
    def ev(rid, label, who, minute):
        return LabelEvent(rid, label, "labelstudio", who, ts=T0 + timedelta(minutes=minute))

    events = [ev("a", "1", "x", 0), ev("a", "2", "y", 1), ev("b", "1", "x", 0),
              ev("b", "2", "x", 1), ev("c", "1", "x", 0), ev("c", "1", "y", 2)]  # fmt: skip
    assert disputed(events) == ["a"]  # b: x corrected itself; c: both agree
