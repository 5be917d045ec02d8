"""`bench loop --via-labelstudio` against a real Label Studio server: a job's labels go through
the engine's curate (import), the simulated annotator's HTTP answers and sync (export), and
the run equals the in-process one (InMemoryLabelStudio); the project holds each picked row once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from curation.labelstudio_annotate import AnnotatingAdapter
from flows.bench_policies import parse_policy
from flows.bench_run import Job, LabelStudioSource, project_title, run_job
from tests.support import REPO, clean_env, run_loopwright

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = str(REPO / "scenarios" / "tiny.toml")
TIMINGS = {"seconds", "bootstrap_seconds", "cpu_seconds", "fit_seconds"}


def projects(labelstudio) -> list[dict]:
    url, token = labelstudio
    r = httpx.get(
        f"{url}/api/projects/?page_size=1000",
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["results"]


@pytest.fixture
def adapter(labelstudio):
    url, token = labelstudio
    with AnnotatingAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as a:
        yield a


def test_job_through_labelstudio_equals_in_process(adapter, labelstudio, tmp_path):
    url, token = labelstudio
    run_id = uuid.uuid4().hex[:8]
    policy = parse_policy("loop-uncertainty@5", 50)
    job = Job(SCENARIO, 3, policy, None, str(tmp_path), degraded_checks=0)
    source = LabelStudioSource(url, token, run_id, retries=2)
    local = run_job(job)
    via = run_job(Job(SCENARIO, 3, policy, None, str(tmp_path), labelstudio=source))
    assert {k: v for k, v in via.items() if k not in TIMINGS} == {
        k: v for k, v in local.items() if k not in TIMINGS
    }
    assert via["labels_spent"] == 5 * 4
    assert not list((tmp_path / "jobs").iterdir())  # job homes are deleted

    title = project_title("tiny", policy.name, 3, run_id)
    (project,) = [p["id"] for p in projects(labelstudio) if p["title"] == title]
    try:
        tasks = adapter.existing_request_ids(project)
        assert len(tasks) == adapter.task_count(project) == via["labels_spent"]
        annotations = adapter.export_annotations(project)
        assert len(annotations) == via["labels_spent"]
        assert {a.request_id for a in annotations} == set(tasks)
        assert all(r.startswith("tiny-s3") for r in tasks)
    finally:
        adapter.delete_project(project)


def test_cli_smoke_via_labelstudio(tmp_path, labelstudio):
    url, token = labelstudio
    out = tmp_path / "x.json"
    env = clean_env(LOOPWRIGHT_LABELSTUDIO__URL=url, LOOPWRIGHT_LABELSTUDIO_TOKEN=token)
    proc = run_loopwright(
        "bench", "loop", "--scenario", "scenarios/tiny.toml", "--seeds", "1",
        "--policies", "loop-uncertainty@5", "--degraded-checks", "0", "--workers", "1",
        "--via-labelstudio", "--json", str(out),
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "starting Label Studio" not in proc.stdout  # it was up: nothing started
    doc = json.loads(Path(out).read_text())
    assert doc["settings"]["labels"] == "labelstudio"
    (run,) = doc["runs"]
    assert run["labels_spent"] == 5 * doc["scenario"]["n_batches"]
    mine = [p for p in projects(labelstudio) if p["title"].startswith("bench-tiny-loop-unc")]
    assert len(mine) == 1  # the other test deletes its project
    assert mine[0]["title"].startswith("bench-tiny-loop-uncertainty@5-s3-")
    assert mine[0]["task_number"] == run["labels_spent"]
