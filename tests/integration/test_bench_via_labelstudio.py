"""`bench loop --via-labelstudio` against a real Label Studio server, through the CLI as a user
runs it: a job's labels go through the engine's curate (import), the simulated annotator's
HTTP answers and sync (export), and the run equals the in-process one (InMemoryLabelStudio,
`run_job` without a Label Studio source); the project holds each picked row once.

One bench job through the server serves both checks (the CLI's wiring and the equality):
each such job costs tens of seconds of HTTP round trips."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from curation.labelstudio_annotate import AnnotatingAdapter
from flows.bench_policies import parse_policy
from flows.bench_run import Job, run_job
from tests.support import REPO, clean_env, run_loopwright

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = str(REPO / "scenarios" / "tiny.toml")
TIMINGS = {"seconds", "bootstrap_seconds", "cpu_seconds", "fit_seconds"}
POLICY = "loop-uncertainty@5"


def projects(labelstudio) -> list[dict]:
    url, token = labelstudio
    r = httpx.get(
        f"{url}/api/projects/?page_size=1000",
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["results"]


def plain(run: dict) -> dict:
    """A run as the JSON holds it (tuples as lists), without its timings."""
    return {k: v for k, v in json.loads(json.dumps(run)).items() if k not in TIMINGS}


def test_cli_via_labelstudio_equals_in_process(tmp_path, labelstudio):
    url, token = labelstudio
    out = tmp_path / "x.json"
    env = clean_env(LOOPWRIGHT_LABELSTUDIO__URL=url, LOOPWRIGHT_LABELSTUDIO_TOKEN=token)
    proc = run_loopwright(
        "bench", "loop", "--scenario", "scenarios/tiny.toml", "--seeds", "1",
        "--policies", POLICY, "--degraded-checks", "0", "--workers", "1",
        "--via-labelstudio", "--json", str(out),
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "starting Label Studio" not in proc.stdout  # it was up: nothing started
    doc = json.loads(Path(out).read_text())
    assert doc["settings"]["labels"] == "labelstudio"
    (run,) = doc["runs"]
    assert run["labels_spent"] == 5 * doc["scenario"]["n_batches"] == 5 * 4

    # the same job in this process, labels through the in-memory labeler: the same decisions
    local_root = tmp_path / "local"
    local_root.mkdir()
    local = run_job(Job(SCENARIO, 3, parse_policy(POLICY, 50), None, str(local_root)))
    assert not list((local_root / "jobs").iterdir())  # job homes are deleted
    (via,) = doc["policies"][POLICY]["seeds"]
    expected = plain(local)
    assert run["rounds"] == expected.pop("rounds")
    assert {k: v for k, v in plain(via).items() if k in expected} == expected
    assert set(expected) <= set(via), set(expected) - set(via)

    mine = [p for p in projects(labelstudio) if p["title"].startswith("bench-tiny-loop-unc")]
    assert len(mine) == 1
    assert mine[0]["title"].startswith(f"bench-tiny-{POLICY}-s3-")
    project = mine[0]["id"]
    with AnnotatingAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as adapter:
        try:
            assert mine[0]["task_number"] == run["labels_spent"]
            tasks = adapter.existing_request_ids(project)
            assert len(tasks) == adapter.task_count(project) == run["labels_spent"]
            annotations = adapter.export_annotations(project)
            assert len(annotations) == run["labels_spent"]
            assert {a.request_id for a in annotations} == set(tasks)
            assert all(r.startswith("tiny-s3") for r in tasks)
        finally:
            adapter.delete_project(project)
