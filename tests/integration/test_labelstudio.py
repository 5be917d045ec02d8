"""The Label Studio adapter against a real server: import, label through the HTTP API, export;
and the contract test: the same calls give the same results on `InMemoryLabelStudio`."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import pytest

from curation.labeling import choice_result
from curation.labelstudio import LabelStudioAdapter, LabelStudioError, LSTask, labeling_config
from curation.labelstudio_annotate import AnnotatingAdapter
from curation.labelstudio_memory import InMemoryLabelStudio
from retrain.digits.annotator import SimulatedAnnotator

pytestmark = pytest.mark.integration

CLASSES = [str(i) for i in range(10)]
# a 1x1 PNG: what a labeler's browser would show
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB"
    "4iG8MwAAAABJRU5ErkJggg=="
)


def tasks(n: int, start: int = 0) -> list[LSTask]:
    return [
        LSTask(
            f"req-{i:04d}",
            PIXEL,
            CLASSES[(i + 1) % 10],
            0.3 + i / 1000,
            "v0001",
            "audit" if i % 5 == 0 else "uncertainty",
        )
        for i in range(start, start + n)
    ]


def truth_of(ts: list[LSTask]) -> dict[str, str]:
    return {t.request_id: CLASSES[int(t.request_id.split("-")[1]) % 10] for t in ts}


@pytest.fixture
def adapter(labelstudio):
    url, token = labelstudio
    with AnnotatingAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as a:
        yield a


@pytest.fixture
def project(adapter):
    project_id = adapter.ensure_project(f"test {uuid.uuid4().hex[:8]}", labeling_config(CLASSES))
    yield project_id
    adapter.delete_project(project_id)


def raw_get(labelstudio, path: str) -> object:
    url, token = labelstudio
    r = httpx.get(f"{url}{path}", headers={"Authorization": f"Token {token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def test_check_and_ensure_project_is_idempotent(adapter):
    adapter.check()
    title = f"idempotent {uuid.uuid4().hex[:8]}"
    first = adapter.ensure_project(title, labeling_config(CLASSES))
    try:
        assert adapter.ensure_project(title, labeling_config(CLASSES)) == first
    finally:
        adapter.delete_project(first)
    adapter.delete_project(first)  # already gone: fine
    with pytest.raises(LabelStudioError) as err:
        adapter.task_count(first)
    assert err.value.status == 404


def test_import_with_preannotations_and_reimport_creates_nothing(adapter, project, labelstudio):
    batch = tasks(30)
    t0 = time.perf_counter()
    ids = adapter.import_tasks(project, batch)
    print(f"import 30 tasks: {time.perf_counter() - t0:.2f}s")
    assert set(ids) == {t.request_id for t in batch}
    assert len(set(ids.values())) == 30
    assert adapter.task_count(project) == 30
    assert adapter.existing_request_ids(project) == ids

    task = raw_get(labelstudio, f"/api/tasks/{ids['req-0005']}/")
    assert task["data"]["request_id"] == "req-0005" and task["data"]["reason"] == "audit"
    assert task["data"]["image"] == PIXEL
    (prediction,) = raw_get(labelstudio, f"/api/predictions/?task={ids['req-0005']}")
    assert prediction["model_version"] == "v0001"
    assert prediction["score"] == pytest.approx(0.305)
    assert prediction["result"][0]["value"] == {"choices": ["6"]}
    assert prediction["result"][0]["from_name"] == "label"

    again = adapter.import_tasks(project, batch)
    assert again == ids
    assert adapter.task_count(project) == 30
    more = adapter.import_tasks(project, tasks(10, start=25))  # 5 old + 5 new
    assert adapter.task_count(project) == 35
    assert {k: more[k] for k in ids.keys() & more.keys()} == {
        k: ids[k] for k in ids.keys() & more.keys()
    }


def test_simulated_annotator_labels_and_export_returns_exactly_those(adapter, project, labelstudio):
    batch = tasks(20)
    ids = adapter.import_tasks(project, batch)
    adapter.import_tasks(project, [LSTask("stranger", PIXEL, None, None, None, "audit")])
    assert len(adapter.pending_tasks(project)) == 21
    truth = truth_of(batch)
    ann = SimulatedAnnotator(truth, CLASSES, name="sim-annotator")

    t0 = time.perf_counter()
    assert ann.label_pending(adapter, project) == 20
    seconds = time.perf_counter() - t0
    print(f"annotate 20 via HTTP: {seconds:.2f}s ({20 / seconds:.1f}/s)")
    assert adapter.pending_tasks(project) == [
        (adapter.existing_request_ids(project)["stranger"], "stranger")
    ]
    assert ann.label_pending(adapter, project) == 0  # nothing left it knows

    t0 = time.perf_counter()
    exported = adapter.export_annotations(project)
    print(f"export 20 annotations: {time.perf_counter() - t0:.2f}s")
    assert len(exported) == 20
    assert {a.request_id: a.label for a in exported} == truth
    assert {a.request_id: a.ls_task_id for a in exported} == ids
    assert all(a.annotator == "sim-annotator@loopwright.local" for a in exported)
    assert all(not a.was_cancelled and a.ts.tzinfo is not None for a in exported)
    assert len({a.ls_annotation_id for a in exported}) == 20
    assert adapter.export_annotations(project) == exported  # exporting twice is identical

    # the server saw real annotations with lead times, made by that user
    ann_id = exported[0].ls_annotation_id
    annotation = raw_get(labelstudio, f"/api/annotations/{ann_id}/")
    assert 1.0 <= annotation["lead_time"] <= 5.0


def test_wrong_answers_and_cancelled_annotations(adapter, project, labelstudio):
    batch = tasks(6)
    ids = adapter.import_tasks(project, batch)
    url, token = labelstudio
    skipped = ids["req-0000"]
    r = httpx.post(
        f"{url}/api/tasks/{skipped}/annotations/",
        json={"result": [], "was_cancelled": True},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    r.raise_for_status()
    truth = truth_of(batch)
    ann = SimulatedAnnotator(truth, CLASSES, error_rate=1.0, seed=3, name="bob")
    assert ann.label_pending(adapter, project) == 5
    exported = {a.request_id: a for a in adapter.export_annotations(project)}
    assert exported["req-0000"].was_cancelled and exported["req-0000"].label is None
    for rid in list(truth)[1:]:
        assert exported[rid].label in CLASSES and exported[rid].label != truth[rid]
        assert exported[rid].annotator == "bob@loopwright.local"


def test_an_edited_annotation_keeps_its_id_and_exports_later(adapter, project, labelstudio):
    """What `sync-labels` relies on to pick corrections up: an edit in Label Studio keeps the
    annotation id, changes the label and bumps `updated_at` (the exported `ts`)."""
    ids = adapter.import_tasks(project, tasks(1))
    ann_id = adapter.annotate(ids["req-0000"], "3")
    (before,) = adapter.export_annotations(project)
    url, token = labelstudio
    r = httpx.patch(
        f"{url}/api/annotations/{ann_id}/",
        json={"result": choice_result("7")},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    r.raise_for_status()
    (after,) = adapter.export_annotations(project)
    assert before.ls_annotation_id == after.ls_annotation_id == ann_id
    assert (before.label, after.label) == ("3", "7")
    assert after.ts > before.ts


def test_wrong_token_is_refused_without_echoing_it(labelstudio):
    url, _ = labelstudio
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(LabelStudioError) as err:
        LabelStudioAdapter(url, wrong, retries=0).check()
    assert "refused the token (401" in str(err.value)
    assert wrong not in str(err.value) and wrong not in repr(err.value)


def test_unreachable_url_fails_clearly_after_retries():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = LabelStudioAdapter(f"http://127.0.0.1:{port}", "any-token", retries=2, backoff=(0.1, 0.2))
    t0 = time.perf_counter()
    with pytest.raises(LabelStudioError, match=r"cannot reach Label Studio .* after 3 attempts"):
        a.check()
    assert time.perf_counter() - t0 >= 0.3


# -- the contract: InMemoryLabelStudio answers like the server -------------------------------
def contract(ls, title: str) -> list[tuple[str, object]]:
    """One sequence of calls, every result with ids and timestamps taken out: what must be
    equal on a real server and in memory. Ids are checked for consistency, not values."""
    seen: list[tuple[str, object]] = []

    def note(step: str, value: object) -> None:
        seen.append((step, value))

    ls.check()
    project = ls.ensure_project(title, labeling_config(CLASSES))
    note(
        "ensure_project again gives the same id",
        ls.ensure_project(title, labeling_config(CLASSES)) == project,
    )
    first = ls.import_tasks(project, tasks(10))
    note("imported ids", sorted(first))
    note("distinct task ids", len(set(first.values())))
    note("reimport is idempotent", ls.import_tasks(project, tasks(10)) == first)
    note("count after reimport", ls.task_count(project))
    more = ls.import_tasks(project, tasks(6, start=7))  # 3 old + 3 new
    note("old ids kept", all(more[r] == first[r] for r in more.keys() & first.keys()))
    note("count after overlap", ls.task_count(project))
    stranger = ls.import_tasks(project, [LSTask("stranger", PIXEL, None, None, None, "audit")])
    existing = ls.existing_request_ids(project)
    note("existing = all imported", existing == {**first, **more, **stranger})
    pending = ls.pending_tasks(project)
    note("pending task ids are the tasks'", all(existing[r] == t for t, r in pending))
    note("pending, oldest first", [r for _, r in pending])

    truth = truth_of(tasks(13))
    alice = SimulatedAnnotator(truth, CLASSES, error_rate=0.3, seed=3, name="alice")
    note("alice labels 4", alice.label_pending(ls, project, limit=4))
    note("pending after 4", [r for _, r in ls.pending_tasks(project)])
    owner_ann = ls.annotate(existing["req-0012"], "5")  # the token's own user
    note("alice labels the rest she knows", alice.label_pending(ls, project))
    note("pending at the end", [r for _, r in ls.pending_tasks(project)])
    bob = SimulatedAnnotator(truth, CLASSES, error_rate=1.0, seed=1, name="bob")
    bob_ann = ls.annotate(existing["req-0003"], bob.answer("req-0003"), annotator="bob")
    note("annotation ids increase", 0 < owner_ann < bob_ann)

    exported = ls.export_annotations(project)
    ann_ids, stamps = [a.ls_annotation_id for a in exported], [a.ts for a in exported]
    note(
        "export (request_id, label, annotator, cancelled), by annotation id",
        [(a.request_id, a.label, a.annotator.split("@")[0], a.was_cancelled) for a in exported],
    )
    note(
        "export task ids are the tasks'",
        all(a.ls_task_id == existing[a.request_id] for a in exported),
    )
    note("export ids distinct and sorted", ann_ids == sorted(set(ann_ids)))
    note(
        "ts aware, in annotation order", all(t.tzinfo for t in stamps) and stamps == sorted(stamps)
    )
    note("export twice is identical", ls.export_annotations(project) == exported)

    ls.delete_task(existing["req-0000"])
    ls.delete_task(existing["req-0000"])  # already gone: fine
    note("count after delete_task", ls.task_count(project))
    note("export after delete_task", sorted({a.request_id for a in ls.export_annotations(project)}))
    anew = ls.import_tasks(project, tasks(1))["req-0000"]
    note("reimport after delete_task makes a new task", anew not in existing.values())
    ls.delete_project(project)
    ls.delete_project(project)  # already gone: fine
    try:
        ls.task_count(project)
        note("task_count of a deleted project", "no error")
    except LabelStudioError as exc:
        note("task_count of a deleted project", exc.status)
    return seen


def test_in_memory_labelstudio_answers_like_the_server(adapter):
    """The benchmark's stand-in and a real server, through one sequence of calls."""
    title = f"contract {uuid.uuid4().hex[:8]}"
    server = contract(adapter, title)
    memory = contract(InMemoryLabelStudio(), title)
    assert memory == server
    results = dict(server)
    assert results["count after overlap"] == 13 and results["pending at the end"] == ["stranger"]
    assert results["task_count of a deleted project"] == 404
    labels = results["export (request_id, label, annotator, cancelled), by annotation id"]
    assert len(labels) == 13 + 1 and {who for _, _, who, _ in labels} == {"alice", "admin", "bob"}
