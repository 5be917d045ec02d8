"""The in-process Label Studio (curation/labelstudio_memory.py): ids, idempotent import, the
pending queue, exports shaped like the server's. The same calls against a real server are
compared in tests/integration/test_labelstudio.py (the contract test)."""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest

import curation.labelstudio_memory as memory_module
from curation.labeling import LabelStudioError, LSAnnotation, LSTask, labeling_config
from curation.labelstudio_memory import ORIGIN, InMemoryLabelStudio
from retrain.digits.annotator import SimulatedAnnotator

CLASSES = [str(i) for i in range(10)]
CONFIG = labeling_config(CLASSES)


def tasks(n: int, start: int = 0) -> list[LSTask]:
    return [
        LSTask(f"req-{i:04d}", "data:,", CLASSES[(i + 1) % 10], 0.3, "v0001", "uncertainty")
        for i in range(start, start + n)
    ]


def test_projects_by_title_with_ids_from_one():
    ls = InMemoryLabelStudio()
    assert ls.ensure_project("a", CONFIG) == 1
    assert ls.ensure_project("b", CONFIG) == 2
    assert ls.ensure_project("a", CONFIG) == 1
    with pytest.raises(ValueError, match="project title is empty"):
        ls.ensure_project(" ", CONFIG)


def test_import_skips_request_ids_already_there_and_returns_all_ids():
    ls = InMemoryLabelStudio()
    p, q = ls.ensure_project("a", CONFIG), ls.ensure_project("b", CONFIG)
    ids = ls.import_tasks(p, tasks(3))
    assert ids == {"req-0000": 1, "req-0001": 2, "req-0002": 3}
    assert ls.import_tasks(p, tasks(3)) == ids and ls.task_count(p) == 3
    more = ls.import_tasks(p, tasks(3, start=2))  # 1 old + 2 new
    assert more == {"req-0002": 3, "req-0003": 4, "req-0004": 5}
    assert ls.existing_request_ids(p) == {**ids, **more}
    assert ls.import_tasks(q, tasks(1)) == {"req-0000": 6}  # task ids count per server
    assert ls.task_count(p) == 5 and ls.task_count(q) == 1
    assert ls.import_tasks(p, []) == {}


def test_import_checks_like_the_adapter():
    ls = InMemoryLabelStudio()
    p = ls.ensure_project("a", CONFIG)
    t = tasks(1)[0]
    with pytest.raises(ValueError, match="request_id 'req-0000' more than once"):
        ls.import_tasks(p, [t, t])
    with pytest.raises(ValueError, match="task 'x' has no image"):
        ls.import_tasks(p, [LSTask("x", "", None, None, None, "audit")])
    assert ls.task_count(p) == 0


def test_pending_annotate_export():
    ls = InMemoryLabelStudio()
    p = ls.ensure_project("a", CONFIG)
    ids = ls.import_tasks(p, tasks(4))
    assert ls.pending_tasks(p) == [
        (1, "req-0000"),
        (2, "req-0001"),
        (3, "req-0002"),
        (4, "req-0003"),
    ]
    assert ls.annotate(ids["req-0002"], "7", lead_time=2.5, annotator="alice") == 1
    assert ls.annotate(ids["req-0000"], "1") == 2  # the owner, by default
    assert ls.annotate(ids["req-0000"], "4", annotator="bob@example.org") == 3  # a second opinion
    assert ls.pending_tasks(p) == [(2, "req-0001"), (4, "req-0003")]
    assert ls.export_annotations(p) == [
        LSAnnotation("req-0002", 3, 1, "7", "alice@loopwright.local", ORIGIN + timedelta(seconds=1), False),
        LSAnnotation("req-0000", 1, 2, "1", "admin@loopwright.local", ORIGIN + timedelta(seconds=2), False),
        LSAnnotation("req-0000", 1, 3, "4", "bob@example.org", ORIGIN + timedelta(seconds=3), False),
    ]  # fmt: skip
    assert ls.export_annotations(p) == ls.export_annotations(p)


def test_simulated_annotator_answers_through_it():
    ls = InMemoryLabelStudio(owner="me@example.org")
    p = ls.ensure_project("a", CONFIG)
    batch = tasks(20) + [LSTask("stranger", "data:,", None, None, None, "audit")]
    ids = ls.import_tasks(p, batch)
    truth = {t.request_id: CLASSES[i % 10] for i, t in enumerate(batch[:20])}
    ann = SimulatedAnnotator(truth, CLASSES, error_rate=0.25, seed=3, name="sim")
    assert ann.label_pending(ls, p, limit=5) == 5
    assert ann.label_pending(ls, p) == 15
    assert ls.pending_tasks(p) == [(ids["stranger"], "stranger")]
    exported = ls.export_annotations(p)
    assert [a.ls_annotation_id for a in exported] == list(range(1, 21))
    assert {a.request_id: a.label for a in exported} == {r: ann.answer(r) for r in truth}
    assert sum(a.label != truth[a.request_id] for a in exported) > 0  # it did err
    assert {a.annotator for a in exported} == {"sim@loopwright.local"}
    assert [a.ts for a in exported] == [ORIGIN + timedelta(seconds=i) for i in range(1, 21)]


def test_two_instances_from_the_same_calls_are_equal():
    def run() -> list[LSAnnotation]:
        ls = InMemoryLabelStudio()
        p = ls.ensure_project("a", CONFIG)
        ls.import_tasks(p, tasks(10))
        SimulatedAnnotator({f"req-{i:04d}": "3" for i in range(10)}, CLASSES, 0.5, 1).label_pending(
            ls, p
        )
        return ls.export_annotations(p)

    assert run() == run()


def test_deletes_and_unknown_ids():
    ls = InMemoryLabelStudio()
    p = ls.ensure_project("a", CONFIG)
    ids = ls.import_tasks(p, tasks(3))
    ls.annotate(ids["req-0001"], "2")
    ls.delete_task(ids["req-0001"])
    ls.delete_task(ids["req-0001"])  # already gone: fine
    assert ls.existing_request_ids(p) == {"req-0000": 1, "req-0002": 3}
    assert ls.export_annotations(p) == [] and ls.task_count(p) == 2
    assert ls.import_tasks(p, tasks(2)) == {"req-0000": 1, "req-0001": 4}  # re-imported anew
    with pytest.raises(LabelStudioError, match="annotate task 2: no such task") as err:
        ls.annotate(2, "5")
    assert err.value.status == 404
    ls.delete_project(p)
    ls.delete_project(p)  # already gone: fine
    for call in (ls.task_count, ls.existing_request_ids, ls.export_annotations, ls.pending_tasks):
        with pytest.raises(LabelStudioError, match=f"project {p} does not exist") as err:
            call(p)
        assert err.value.status == 404
    with pytest.raises(LabelStudioError, match="project 9 does not exist"):
        ls.import_tasks(9, tasks(1))
    assert ls.ensure_project("a", CONFIG) == 2  # a new project, a new id


def test_check_close_and_context_manager():
    with InMemoryLabelStudio() as ls:
        ls.check()
        p = ls.ensure_project("a", CONFIG)
    ls.close()
    assert ls.task_count(p) == 0  # closing keeps the data: a benchmark reuses the instance
    assert repr(ls) == "InMemoryLabelStudio(projects=1, tasks=0, annotations=0)"
    with pytest.raises(ValueError, match="owner is empty"):
        InMemoryLabelStudio(owner="")


def test_doctests():
    assert doctest.testmod(memory_module).failed == 0


PRODUCTION = ["check", "ensure_project", "existing_request_ids", "task_count", "import_tasks",
              "export_annotations", "close", "__enter__", "__exit__"]  # fmt: skip
ANNOTATING = ["pending_tasks", "annotate", "delete_task", "delete_project"]


@pytest.mark.parametrize("name", PRODUCTION + ANNOTATING)
def test_same_methods_and_signatures_as_the_server_adapters(name):
    import inspect

    from curation.labelstudio import LabelStudioAdapter
    from curation.labelstudio_annotate import AnnotatingAdapter

    server = AnnotatingAdapter if name in ANNOTATING else LabelStudioAdapter
    assert inspect.signature(getattr(InMemoryLabelStudio, name)) == inspect.signature(
        getattr(server, name)
    )
