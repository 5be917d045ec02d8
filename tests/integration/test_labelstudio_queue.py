"""Labelers see the most useful work first, on a real Label Studio: the import sets the
project's sampling to uncertainty with the pre-annotations' model version, and `/next`
(what a labeler's "Label All Tasks" asks for) serves tasks in `queue_scores` order."""

from __future__ import annotations

import uuid

import httpx
import pytest

from curation.labeling import choice_result, labeling_config, queue_scores
from curation.labelstudio import SAMPLING, LabelStudioAdapter, LSTask

pytestmark = pytest.mark.integration

CLASSES = [str(i) for i in range(10)]
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB"
    "4iG8MwAAAABJRU5ErkJggg=="
)


@pytest.fixture
def adapter(labelstudio):
    url, token = labelstudio
    with LabelStudioAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as a:
        yield a


@pytest.fixture
def project(adapter):
    from curation.labelstudio_annotate import AnnotatingAdapter

    project_id = adapter.ensure_project(f"queue {uuid.uuid4().hex[:8]}", labeling_config(CLASSES))
    yield project_id
    with AnnotatingAdapter(adapter.url, adapter._token) as cleanup:
        cleanup.delete_project(project_id)


def as_tasks(rows: list[dict], version: str) -> list[LSTask]:
    scores = queue_scores(rows)
    return [LSTask(r["request_id"], PIXEL, "3", s, version, r["reason"])
            for r, s in zip(rows, scores, strict=True)]  # fmt: skip


def label_in_next_order(labelstudio, project: int, n: int) -> list[str]:
    """As a labeler: ask for the next task, annotate it, ask again... `n` times."""
    url, token = labelstudio
    headers = {"Authorization": f"Token {token}"}
    seen = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for _ in range(n):
            r = http.get(f"/api/projects/{project}/next")
            r.raise_for_status()
            task = r.json()
            seen.append(task["data"]["request_id"])
            http.post(
                f"/api/tasks/{task['id']}/annotations/", json={"result": choice_result("3")}
            ).raise_for_status()
    return seen


def test_next_serves_the_curation_order(adapter, project, labelstudio):
    rows = [
        {"request_id": "unc-mid", "reason": "uncertainty", "score": 0.5},
        {"request_id": "audit-1", "reason": "audit", "score": 0.1},
        {"request_id": "unc-most", "reason": "uncertainty", "score": 0.95},
        {"request_id": "like-far", "reason": "like:r7", "score": 0.4},
        {"request_id": "unc-least", "reason": "uncertainty", "score": 0.05},
        {"request_id": "thumbs-down", "reason": "feedback", "score": None},
        {"request_id": "like-near", "reason": "like:r7", "score": 0.99},
    ]
    batch = as_tasks(rows, "v0001")
    adapter.import_tasks(project, batch)
    assert adapter.queue_order(project) == (SAMPLING, "v0001")
    expected = [t.request_id for t in sorted(batch, key=lambda t: t.score)]
    # the bands: a thumbs-down first, then what a person asked for, uncertainty by score
    assert expected[:3] == ["thumbs-down", "like-near", "like-far"]
    unc = [e for e in expected if e.startswith("unc")]
    assert unc == ["unc-most", "unc-mid", "unc-least"]
    # the audit task lands inside the uncertainty range: neither first nor last
    assert expected.index("unc-most") < expected.index("audit-1") < expected.index("unc-least")
    assert label_in_next_order(labelstudio, project, len(batch)) == expected


def test_the_queue_follows_a_new_champion(adapter, project, labelstudio):
    old = as_tasks([{"request_id": f"old-{i}", "reason": "uncertainty", "score": 0.1 * i}
                    for i in range(3)], "v0001")  # fmt: skip
    adapter.import_tasks(project, old)
    new = as_tasks([{"request_id": f"new-{i}", "reason": "uncertainty", "score": 0.2 * i}
                    for i in range(3)], "v0002")  # fmt: skip
    adapter.import_tasks(project, new)
    assert adapter.queue_order(project) == (SAMPLING, "v0002")
    # the new champion's picks first, most uncertain first; older ones after (unordered)
    served = label_in_next_order(labelstudio, project, 3)
    assert served == ["new-2", "new-1", "new-0"]
