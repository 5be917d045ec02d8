"""The Label Studio labeler of `bench loop --via-labelstudio`, against a fake adapter: what it
imports, that it returns the annotator's labels in the order asked, idempotency, errors."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

import flows.bench_labelstudio as bls
from curation.labelstudio import LabelStudioError, LSAnnotation
from flows import services
from flows.bench_labelstudio import LabelStudioLabeler, LabelStudioSource, MissingLabels
from flows.config import Secret
from retrain.digits.annotator import SimulatedAnnotator
from retrain.digits.task import TASK

CLASSES = TASK.classes


class FakeAdapter:
    """The adapter methods the labeler and the annotator use, kept in memory."""

    def __init__(self, refuse_first_annotate: bool = False) -> None:
        self.projects: dict[str, int] = {}
        self.tasks: dict[int, dict] = {}  # task id -> {request_id, task}
        self.annotations: list[LSAnnotation] = []
        self.refuse = refuse_first_annotate
        self.t0 = datetime(2025, 1, 1, tzinfo=UTC)

    def ensure_project(self, title: str, labeling_config: str) -> int:
        assert labeling_config == TASK.labeling_config
        return self.projects.setdefault(title, len(self.projects) + 1)

    def import_tasks(self, project_id, tasks):
        have = {t["task"].request_id: k for k, t in self.tasks.items()}
        for t in tasks:
            if t.request_id not in have:
                have[t.request_id] = len(self.tasks) + 100
                self.tasks[have[t.request_id]] = {"task": t}
        return {t.request_id: have[t.request_id] for t in tasks}

    def pending_tasks(self, project_id):
        done = {a.ls_task_id for a in self.annotations}
        return sorted((k, t["task"].request_id) for k, t in self.tasks.items() if k not in done)

    def annotate(self, task_id, label, lead_time=None, annotator=None) -> int:
        if self.refuse:
            self.refuse = False
            raise LabelStudioError("HTTP 400: user with this email already exists", 400)
        return self.add(task_id, label)

    def add(self, task_id: int, label: str) -> int:
        n = len(self.annotations) + 1
        rid = self.tasks[task_id]["task"].request_id
        self.annotations.append(
            LSAnnotation(rid, task_id, n, label, "a@x", self.t0 + timedelta(seconds=n), False)
        )
        return n

    def export_annotations(self, project_id):
        return list(self.annotations)


def world(n: int = 12, error_rate: float = 0.3):
    ids = [f"run-b0-{k:03d}" for k in range(n)]
    truth = {r: CLASSES[k % 10] for k, r in enumerate(ids)}
    ann = SimulatedAnnotator(truth, CLASSES, error_rate=error_rate, seed=7, name="bench-annotator")
    rng = np.random.default_rng(0)
    x = rng.random((n, 1, 8, 8)).astype(np.float32)
    probs = rng.dirichlet(np.ones(10), size=n).astype(np.float32)
    return ids, x, probs, ann


def test_labels_are_the_annotators_in_the_order_asked_and_tasks_carry_the_guess():
    ids, x, probs, ann = world()
    fake = FakeAdapter()
    labeler = LabelStudioLabeler(fake, ann, "bench-t-p-s0-r")
    order = [5, 0, 11, 3]
    got = labeler([ids[k] for k in order], x[order], probs[order])
    assert got.dtype == np.int64
    assert got.tolist() == [int(ann.answer(ids[k])) for k in order]
    assert fake.projects == {"bench-t-p-s0-r": 1}
    tasks = {t["task"].request_id: t["task"] for t in fake.tasks.values()}
    assert set(tasks) == {ids[k] for k in order}
    for k in order:
        t = tasks[ids[k]]
        assert t.pred_label == CLASSES[int(probs[k].argmax())]
        assert t.score == pytest.approx(float(probs[k].max()))
        assert t.image == TASK.render(TASK.encode_input(x[k]))  # what curate imports


def test_asking_again_adds_no_task_and_no_annotation():
    ids, x, probs, ann = world()
    fake = FakeAdapter()
    labeler = LabelStudioLabeler(fake, ann, "t")
    first = labeler(ids[:6], x[:6], probs[:6])
    n_tasks, n_ann = len(fake.tasks), len(fake.annotations)
    again = labeler(ids[:6], x[:6], probs[:6])
    assert again.tolist() == first.tolist()
    assert (len(fake.tasks), len(fake.annotations)) == (n_tasks, n_ann) == (6, 6)
    more = labeler(ids[4:9], x[4:9], probs[4:9])  # 2 old, 3 new
    assert more.tolist() == [int(ann.answer(r)) for r in ids[4:9]]
    assert (len(fake.tasks), len(fake.annotations)) == (9, 9)


def test_the_latest_annotation_of_a_request_wins():
    ids, x, probs, ann = world(error_rate=0.0)
    fake = FakeAdapter()
    labeler = LabelStudioLabeler(fake, ann, "t")
    assert labeler(ids[:2], x[:2], probs[:2]).tolist() == [0, 1]
    fake.add(min(fake.tasks), "7")  # someone corrects the first task later
    assert labeler(ids[:2], x[:2], probs[:2]).tolist() == [7, 1]


def test_unanswered_request_ids_are_named():
    ids, x, probs, _ = world()
    ann = SimulatedAnnotator({ids[0]: "3"}, CLASSES, name="bench-annotator")
    labeler = LabelStudioLabeler(FakeAdapter(), ann, "bench-x")
    with pytest.raises(MissingLabels) as err:
        labeler(ids[:3], x[:3], probs[:3])
    msg = str(err.value)
    assert "2 of 3 request ids" in msg and repr(ids[1]) in msg and repr(ids[2]) in msg
    assert repr(ids[0]) not in msg and "'bench-x'" in msg


def test_a_user_creation_race_is_retried_once_and_other_errors_raise():
    ids, x, probs, ann = world()
    fake = FakeAdapter(refuse_first_annotate=True)
    got = LabelStudioLabeler(fake, ann, "t")(ids[:3], x[:3], probs[:3])
    assert got.tolist() == [int(ann.answer(r)) for r in ids[:3]]
    assert len(fake.annotations) == 3


def test_bad_shapes_and_empty_calls():
    ids, x, probs, ann = world()
    labeler = LabelStudioLabeler(FakeAdapter(), ann, "t")
    with pytest.raises(ValueError, match="3 request ids, 2 images"):
        labeler(ids[:3], x[:2], probs[:3])
    assert labeler([], x[:0], probs[:0]).tolist() == []


def test_source_hides_the_token_and_titles():
    src = LabelStudioSource("http://127.0.0.1:8101", "s3cret-token", "r1")
    assert "s3cret" not in repr(src) and "s3cret" not in repr(src.adapter())
    assert doctest.testmod(bls).failed == 0


def _cfg(url: str, token: str = "tok"):
    return SimpleNamespace(
        labelstudio=SimpleNamespace(url=url, token=Secret(token), timeout_s=5.0, retries=1)
    )


def test_session_uses_a_running_server_and_starts_nothing(monkeypatch):
    monkeypatch.setattr(bls, "_reachable", lambda url, token, t: True)
    monkeypatch.setattr(services, "_run", lambda *a: pytest.fail(f"ran {a}"))
    with bls.labelstudio_session(_cfg("http://127.0.0.1:8101"), "r", say=lambda m: None) as s:
        assert (s.url, s.token, s.run_id) == ("http://127.0.0.1:8101", "tok", "r")


def test_session_starts_a_local_server_and_stops_only_what_it_started(monkeypatch):
    calls = []

    def run(script, action, env):
        calls.append((script, action, env["LS_PORT"]))
        return {"start": "healthy at ...", "token": "new-token\n", "stop": "stopped"}[action]

    monkeypatch.setattr(bls, "_reachable", lambda url, token, t: False)
    monkeypatch.setattr(services, "_run", run)
    with bls.labelstudio_session(_cfg("http://127.0.0.1:8101"), "r", say=lambda m: None) as s:
        assert s.token == "new-token"
        assert [c[1] for c in calls] == ["start", "token"]
    assert calls[-1] == ("labelstudio.sh", "stop", "8101")

    calls.clear()
    monkeypatch.setattr(services, "_run", lambda *a: run(*a).replace("healthy", "already"))
    with bls.labelstudio_session(_cfg("http://127.0.0.1:8101"), "r", say=lambda m: None):
        pass
    assert [c[1] for c in calls] == ["start", "token"]  # running already: not stopped


def test_session_refuses_to_start_a_remote_server(monkeypatch):
    monkeypatch.setattr(bls, "_reachable", lambda url, token, t: False)
    with (
        pytest.raises(RuntimeError, match="not on this machine"),
        bls.labelstudio_session(_cfg("https://ls.example.com"), "r", say=lambda m: None),
    ):
        pass
