"""Bad input from people, through the real Label Studio server: an annotation with a label the
task does not know, an empty result, a task deleted in Label Studio. `loopwright sync-labels`
exits non-zero naming the annotation (or request id) and the fix, stores nothing, and the fix
it names works. Annotators who disagree are not an error: both answers are kept and the
documented rule decides (the latest label event per request id wins; the row is flagged).
A labeler who corrects an annotation after it was synced gets the correction into training;
one who deletes it is told that its label stays."""

from __future__ import annotations

import json

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curation.labelstudio_annotate import AnnotatingAdapter
from flows.cli import app
from tests.reliability.conftest import log_digits, write_config
from tests.reliability.helpers import fingerprint, squash

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def labeling(tmp_path, ls_server, prefect_harness, monkeypatch):
    """A fresh home and Label Studio project holding 4 curated tasks, none annotated."""
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", ls_server.token)
    cfg = write_config(tmp_path / "loopwright.toml", tmp_path / "home", ls_server.url)
    log_digits(cfg, 30, prefix=tmp_path.name[:20])
    assert cli("curate", "--budget", "4", "--seed", "1", cfg=cfg).exit_code == 0
    state = json.loads((tmp_path / "home" / "state" / "labelstudio.json").read_text())
    adapter = AnnotatingAdapter(ls_server.url, ls_server.token)
    tasks = adapter.pending_tasks(state["project_id"])
    assert len(tasks) == 4
    yield {"cfg": cfg, "home": tmp_path / "home", "adapter": adapter, "tasks": tasks,
           "project": state["project_id"], "server": ls_server}  # fmt: skip
    adapter.delete_project(state["project_id"])
    adapter.close()


def cli(*args: str, cfg) -> object:
    return CliRunner().invoke(app, [*args, "--config", str(cfg)])


def api(server, method: str, path: str, body: dict | None = None) -> dict:
    """What a browser (or a broken client) sends: the raw HTTP API."""
    r = httpx.request(
        method,
        f"{server.url}{path}",
        json=body,
        headers={"Authorization": f"Token {server.token}"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json() if r.content else {}


def choice(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "image", "type": "choices",
             "value": {"choices": [label]}}]  # fmt: skip


def unknown_label(ctx) -> tuple[tuple[str, ...], object]:
    task, rid = ctx["tasks"][0]
    ann = ctx["adapter"].annotate(task, "eleven")
    expect = (f"annotation {ann} on task {task} (request_id '{rid}') has label 'eleven', "
              "not a class of the task: relabel it with one of")  # fmt: skip

    def fix() -> None:
        api(ctx["server"], "PATCH", f"/api/annotations/{ann}/", {"result": choice("3")})

    return (expect,), fix


def empty_result(ctx):
    task, rid = ctx["tasks"][1]
    ann = api(ctx["server"], "POST", f"/api/tasks/{task}/annotations/", {"result": []})["id"]
    expect = f"annotation {ann} on task {task} (request_id '{rid}') has an empty result"

    def fix() -> None:
        api(ctx["server"], "PATCH", f"/api/annotations/{ann}/", {"result": choice("4")})

    return (expect, "choose one class in Label Studio"), fix


def task_deleted(ctx):
    task, rid = ctx["tasks"][2]
    ctx["adapter"].delete_task(task)
    expect = (f"request_id '{rid}' is queued for labeling but has no task in Label Studio "
              f"project {ctx['project']} (deleted there?): run `loopwright curate`")  # fmt: skip

    def fix() -> None:
        assert cli("curate", "--budget", "0", cfg=ctx["cfg"]).exit_code == 0
        present = ctx["adapter"].existing_request_ids(ctx["project"])
        assert rid in present and ctx["adapter"].task_count(ctx["project"]) == 4

    return (expect,), fix


@pytest.mark.parametrize("make", [unknown_label, empty_result, task_deleted])
def test_bad_annotation_fails_sync_clearly_and_the_fix_works(labeling, make):
    expect, fix = make(labeling)
    before = fingerprint(labeling["home"])
    result = cli("sync-labels", cfg=labeling["cfg"])
    out = squash(result.output)
    assert result.exit_code == 1, out
    assert "error: sync-labels wrote 0 labels but 1 problem(s) need a person" in out
    for text in expect:
        assert text in out, f"{text!r} not in {out}"
    assert labeling["server"].token not in result.output
    assert fingerprint(labeling["home"]) == before

    fix()
    again = cli("sync-labels", "--json", cfg=labeling["cfg"])
    assert again.exit_code == 0, again.output
    assert "error" not in again.output


def test_disagreeing_annotators_are_kept_and_the_latest_wins(labeling):
    from storage.home import DataHome
    from storage.queries import Queries

    (task, rid), adapter = labeling["tasks"][3], labeling["adapter"]
    adapter.annotate(task, "3", annotator="alice")
    adapter.annotate(task, "5", annotator="bob")  # later
    result = cli("sync-labels", "--json", cfg=labeling["cfg"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["disputed"] == 1
    q = Queries(DataHome(labeling["home"]))
    labels = q.labeled_examples().to_pylist()
    row = next(r for r in labels if r["request_id"] == rid)
    assert (row["label"], row["n_annotators"], row["disagreement"]) == ("5", 2, True)
    assert q.label_counts() == {"labelstudio": 1}  # one request id, both events kept:
    events = [e for e in adapter.export_annotations(labeling["project"]) if e.request_id == rid]
    assert sorted(e.label for e in events) == ["3", "5"]
    assert q.annotation_ids() >= {e.ls_annotation_id for e in events}


def test_a_corrected_annotation_is_synced_once_and_wins(labeling):
    from storage.home import DataHome
    from storage.queries import Queries

    (task, rid), server = labeling["tasks"][0], labeling["server"]
    home, q = labeling["home"], Queries(DataHome(labeling["home"]))
    ann = labeling["adapter"].annotate(task, "3")

    def sync() -> dict:
        result = cli("sync-labels", "--json", cfg=labeling["cfg"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def label() -> str:
        return next(r["label"] for r in q.labeled_examples().to_pylist() if r["request_id"] == rid)

    def raw() -> list[tuple]:  # the files themselves, not the deduplicated views
        table = pq.ParquetDataset(home / "labels").read(columns=["ls_annotation_id", "label"])
        return sorted(zip(*table.to_pydict().values(), strict=True))

    assert sync()["new_labels"] == 1 and label() == "3"
    api(server, "PATCH", f"/api/annotations/{ann}/", {"result": choice("7")})  # the UI's edit
    assert sync()["new_labels"] == 1
    assert label() == "7" and raw() == [(ann, "3"), (ann, "7")]
    row = next(r for r in q.labeled_examples().to_pylist() if r["request_id"] == rid)
    assert (row["n_annotators"], row["disagreement"]) == (1, False)
    unchanged = fingerprint(home / "labels")
    again = sync()
    assert again["new_labels"] == 0 and again["deleted_annotations"] == 0
    assert fingerprint(home / "labels") == unchanged

    # deleted in Label Studio: reported, and its last label stays (append-only log)
    api(server, "DELETE", f"/api/annotations/{ann}/")
    gone = sync()
    assert (gone["exported"], gone["new_labels"], gone["deleted_annotations"]) == (0, 0, 1)
    assert label() == "7" and raw() == [(ann, "3"), (ann, "7")]


@pytest.mark.parametrize("command", ["curate", "sync-labels"])
def test_wrong_token_is_refused_without_echo(labeling, monkeypatch, command):
    wrong = "wrong0token0" + "9" * 28
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", wrong)
    before = fingerprint(labeling["home"])
    result = cli(command, cfg=labeling["cfg"])
    out = squash(result.output)
    assert result.exit_code == 1, out
    assert "Label Studio refused the token (401" in out
    # the message names where the refused token came from, and the fix
    assert "from the environment (LOOPWRIGHT_LABELSTUDIO_TOKEN)" in out
    assert "set LOOPWRIGHT_LABELSTUDIO_TOKEN to an admin's token of that server" in out
    assert wrong not in result.output and labeling["server"].token not in result.output
    assert fingerprint(labeling["home"]) == before
