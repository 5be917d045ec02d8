"""docs/your-model.md, followed the way a user follows it: the iris plugin copied out of the
repository into a folder of their own (on PYTHONPATH, nothing of tests/ importable), their
data written by its `prepare_data.py`, then the `loopwright` command in child processes
against a real Prefect server and a real Label Studio: seed, retrain (first champion),
score-batch, curate (tasks in Label Studio, shown as a table, the guess pre-selected), a
person's answers through Label Studio's API, sync-labels, retrain on them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO, clean_env, run_loopwright

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = REPO / "docs" / "your-model"


@pytest.fixture(scope="module")
def user(tmp_path_factory, labelstudio, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    url, token = labelstudio
    folder = tmp_path_factory.mktemp("their-project")
    for name in ("iris_task.py", "prepare_data.py", "loopwright.toml"):
        shutil.copy(EXAMPLE / name, folder / name)
    cfg = folder / "loopwright.toml"
    text = cfg.read_text().replace('url = "http://127.0.0.1:8080"', f'url = "{url}"')
    cfg.write_text(text.replace('project_title = "iris"', 'project_title = "iris-your-model"'))
    env = clean_env(
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PREFECT_HOME=str(folder / "ph"),
        PYTHONPATH=str(folder),  # their folder only: the plugin is out of tree
        LOOPWRIGHT_LABELSTUDIO_TOKEN=token,
    )
    prep = subprocess.run(
        [sys.executable, "prepare_data.py", "."], cwd=folder, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert prep.returncode == 0, prep.stderr
    assert "wrote 100 labeled and 50 unlabeled flowers" in prep.stdout
    return folder, env, url, token


def lw(user, *args: str) -> tuple[int, str, str]:
    folder, env, _, _ = user
    proc = run_loopwright(*args, "--config", str(folder / "loopwright.toml"), env=env,
                          timeout=600, cwd=folder)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stdout + proc.stderr


def lw_json(user, *args: str) -> dict:
    code, out, raw = lw(user, *args, "--json")
    assert code == 0, raw
    return json.loads(out[out.index("{") :])


def test_the_plugin_is_not_importable_from_the_repository():
    probe = subprocess.run(
        [sys.executable, "-c", "import iris_task"], cwd=REPO, env=clean_env(PYTHONPATH=""),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode != 0 and "No module named 'iris_task'" in probe.stderr


def test_the_walkthrough_of_docs_your_model(user):
    import httpx

    folder, _, url, token = user
    code, out, raw = lw(user, "seed", "--input", "seed.parquet")
    assert code == 0 and "seeded 100 labeled examples" in raw, raw
    code, out, raw = lw(user, "retrain")
    assert code == 0, raw
    card = json.loads((folder / "home" / "reports" / "cards" / "v0001.json").read_text())
    assert card["task"] == "iris" and card["gate"]["promote"] is True, card["gate"]
    assert card["models"]["challenger"]["accuracy"] >= 0.8  # the task's own recipe trains it
    code, out, raw = lw(user, "score-batch", "--input", "traffic.parquet")
    assert code == 0 and "scored 50 inputs with champion v0001" in raw, raw

    sent = lw_json(user, "curate", "--seed", "1")
    assert sent["selected"] == sent["imported"] == 10  # [curation] budget_per_batch
    from curation.labelstudio_annotate import AnnotatingAdapter

    truth = json.loads((folder / "truth.json").read_text())
    project = sent["project_id"]
    with AnnotatingAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as ls:
        pending = ls.pending_tasks(project)
        assert len(pending) == 10
        shown = httpx.get(f"{url}/api/tasks/{pending[0][0]}/",
                          headers={"Authorization": f"Token {token}"}, timeout=30)  # fmt: skip
        shown.raise_for_status()
        task = shown.json()
        assert "<table" in task["data"]["image"] and "petal_length_cm" in task["data"]["image"]
        guess = task["predictions"][0]["result"][0]["value"]["choices"][0]
        assert guess in {"setosa", "versicolor", "virginica"}  # the model's guess, pre-filled
        for task_id, request_id in pending:  # the person who labels, through the API
            ls.annotate(task_id, truth[request_id])

    synced = lw_json(user, "sync-labels")
    assert synced["new_labels"] == 10, synced
    again = lw_json(user, "sync-labels")
    assert again["new_labels"] == 0  # idempotent
    info = lw_json(user, "status")
    assert info["labels"] == {"seed": 100, "labelstudio": 10}
    code, out, raw = lw(user, "retrain", "--force", "--reason", "first labels")
    assert code == 0, raw
    assert (folder / "home" / "models" / "v0002").is_dir()
    card = json.loads((folder / "home" / "reports" / "cards" / "v0002.json").read_text())
    assert card["dataset"]["n_train"] + card["dataset"]["n_test"] == 110
