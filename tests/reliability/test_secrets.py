"""Secrets: the whole demo loop runs against this suite's Label Studio server, whose token and
password are known to the test; neither may appear in anything loopwright printed or wrote:
the data home (logs, reports, report cards, state), the Label Studio data dir (its own token,
password and database aside), the Prefect server's folder (its database holds every flow-run
log, parameter and artifact), `status` output, nor the repr of config objects."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.reliability.helpers import LOOPWRIGHT, REPO, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LS_OWN = {"token", "password", "label_studio.sqlite3", "label_studio.sqlite3-journal",
          "label_studio.sqlite3-wal", "label_studio.sqlite3-shm"}  # fmt: skip


def files_holding(root: Path, secrets: dict[str, str], skip: set[str] = frozenset()) -> list:
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (path.parent == root and path.name in skip):
            data = path.read_bytes()
            hits += [(name, str(path)) for name, s in secrets.items() if s.encode() in data]
    return hits


@pytest.fixture(scope="module")
def demo(tmp_path_factory, ls_server):
    root = tmp_path_factory.mktemp("secrets-demo")
    cfg = root / "loopwright.toml"
    cfg.write_text(
        f"""
[home]
path = "{root / "home"}"
[labelstudio]
url = "{ls_server.url}"
project_title = "secrets-demo"
[prefect]
port = {free_port()}
[drift]
reference_rows = 100
window_rows = 100
report_sample_rows = 300
[curation]
budget_per_batch = 15
[trigger]
min_labels = 10
window_labels = 30
[retrain]
seed_rows = 400
max_epochs = 30
finetune_epochs = 8
[demo]
batches_per_round = 1
holdout_rows = 200
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPWRIGHT_", "PREFECT_API"))}
    env.update(LS_DATA_DIR=str(ls_server.data_dir), PREFECT_SERVER_DIR=str(root / "prefect"))

    def run(*args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [LOOPWRIGHT, *args, "--config", str(cfg)],
            env={**env, **(extra or {})},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1200,
        )

    proc = run("demo", "--scenario", "scenarios/tiny.toml")
    with_token = {"LOOPWRIGHT_LABELSTUDIO_TOKEN": ls_server.token}
    status = [run("status", extra=with_token), run("status", "--json", extra=with_token)]
    return {"proc": proc, "status": status, "root": root, "server": ls_server}


def test_demo_ran_the_whole_loop(demo):
    proc = demo["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "accuracy after retraining" in proc.stdout
    assert all(s.returncode == 0 for s in demo["status"])


def test_token_and_password_appear_nowhere(demo):
    server = demo["server"]
    secrets = {"token": server.token, "password": server.password}
    printed = [demo["proc"].stdout, demo["proc"].stderr]
    printed += [s.stdout + s.stderr for s in demo["status"]]
    for text in printed:
        for name, value in secrets.items():
            assert value not in text, f"the {name} was printed"
    home, prefect = demo["root"] / "home", demo["root"] / "prefect"
    assert (home / "reports" / "cards").is_dir() and any(prefect.glob("*.db")), "nothing to search"
    assert files_holding(home, secrets) == []
    assert files_holding(prefect, secrets) == []
    assert files_holding(server.data_dir, secrets, skip=LS_OWN) == []
    # the search finds what is there: the server's own token file holds it
    assert files_holding(server.data_dir, secrets, skip=LS_OWN - {"token"}) == [
        ("token", str(server.data_dir / "token"))
    ]


def test_config_and_adapter_never_show_the_token(monkeypatch, ls_server):
    from curation.labelstudio import LabelStudioAdapter
    from flows.config import load_config, to_dict

    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", ls_server.token)
    cfg = load_config(REPO / "loopwright.toml")
    assert cfg.labelstudio.token.reveal() == ls_server.token
    shown = [repr(cfg), str(cfg), repr(cfg.labelstudio), str(to_dict(cfg)), f"{cfg.labelstudio}"]
    adapter = LabelStudioAdapter(ls_server.url, ls_server.token)
    shown += [repr(adapter), str(adapter)]
    for text in shown:
        assert ls_server.token not in text
