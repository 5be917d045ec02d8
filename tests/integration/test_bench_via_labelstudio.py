"""`bench loop --via-labelstudio` against a real Label Studio server: the replay's labels go
through import, the simulated annotator's HTTP answers and the export, and come back equal
to the in-process ones; the project holds each picked row once, with the champion's guess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from curation.labelstudio import LabelStudioAdapter
from flows.bench_labelstudio import LabelStudioLabeler
from flows.bench_replay import Policy, replay
from flows.bench_world import Settings, build_world
from retrain.digits.task import TASK

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")
SCENARIO = str(REPO / "scenarios" / "tiny.toml")
SETTINGS = Settings(fit_samples=3000, degraded_checks=1)


def raw_get(labelstudio, path: str) -> object:
    url, token = labelstudio
    r = httpx.get(f"{url}{path}", headers={"Authorization": f"Token {token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


@pytest.fixture
def adapter(labelstudio):
    url, token = labelstudio
    with LabelStudioAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as a:
        yield a


class Recording:
    """Wraps a labeler and keeps what each call asked and got."""

    def __init__(self, labeler) -> None:
        self.labeler, self.calls = labeler, []

    def __call__(self, ids, x, probs):
        y = self.labeler(ids, x, probs)
        self.calls.append((list(ids), x, probs, y))
        return y


def test_replay_through_labelstudio_equals_in_process(adapter, labelstudio):
    world = build_world(SCENARIO, 0, SETTINGS)
    policy = Policy("loop-uncertainty", 5)
    title = f"bench-test-{uuid.uuid4().hex[:8]}"
    labeler = Recording(LabelStudioLabeler(adapter, world.annotator, title))

    via = replay(world, policy, SETTINGS, labeler)
    local = replay(world, policy, SETTINGS)

    # every call: the labels the in-process labeler gives for the same ids
    assert len(labeler.calls) == world.scenario.n_batches
    for ids, _, _, y in labeler.calls:
        assert y.tolist() == world.label(ids).tolist()
    assert {k: v for k, v in via.items() if "seconds" not in k} == {
        k: v for k, v in local.items() if "seconds" not in k
    }

    # the project holds exactly the picked rows, once each, pre-annotated with the guess
    project = labeler.labeler.project_id
    try:
        picked = [r for ids, *_ in labeler.calls for r in ids]
        guess = {
            r: TASK.classes[int(p.argmax())]
            for ids, _, probs, _ in labeler.calls
            for r, p in zip(ids, probs, strict=True)
        }
        assert len(picked) == len(set(picked)) == via["labels_spent"]
        tasks = adapter.existing_request_ids(project)
        assert set(tasks) == set(picked)
        assert adapter.task_count(project) == len(picked)
        for rid, task_id in tasks.items():
            (prediction,) = raw_get(labelstudio, f"/api/predictions/?task={task_id}")
            assert prediction["result"][0]["value"] == {"choices": [guess[rid]]}, rid
        assert len(adapter.export_annotations(project)) == len(picked)

        # asking again for rows already there creates no task and no annotation
        ids, x, probs, y = labeler.calls[1]
        assert labeler.labeler(ids, x, probs).tolist() == y.tolist()
        assert adapter.task_count(project) == len(picked)
        assert len(adapter.export_annotations(project)) == len(picked)
    finally:
        adapter.delete_project(project)


def test_cli_smoke_via_labelstudio(tmp_path, labelstudio):
    url, token = labelstudio
    out = tmp_path / "x.json"
    env = {
        **os.environ,
        "LOOPWRIGHT_LABELSTUDIO__URL": url,
        "LOOPWRIGHT_LABELSTUDIO_TOKEN": token,
    }
    proc = subprocess.run(
        [
            LOOPWRIGHT,
            "bench",
            "loop",
            "--scenario",
            "scenarios/tiny.toml",
            "--seeds",
            "1",
            "--policies",
            "loop-uncertainty",
            "--multipliers",
            "1",
            "--via-labelstudio",
            "--json",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "starting Label Studio" not in proc.stdout  # it was up: nothing started
    doc = json.loads(out.read_text())
    assert doc["settings"]["labels"] == "labelstudio"
    projects = raw_get(labelstudio, "/api/projects/?page_size=1000")["results"]
    for name, pol in doc["policies"].items():
        (run,) = pol["seeds"]
        assert run["labels_spent"] == pol["budget"] * doc["scenario"]["n_batches"]
        mine = [p for p in projects if p["title"].startswith(f"bench-tiny-{name}-s0-")]
        assert len(mine) == 1, name
        assert mine[0]["task_number"] == run["labels_spent"]
    assert np.isfinite(doc["policies"]["loop-uncertainty@5"]["median"]["auc"])
