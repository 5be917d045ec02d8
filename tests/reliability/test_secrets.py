"""Secrets: the whole demo loop runs with a Label Studio token and password known to the test
(preset for the server's first start); neither may appear in anything loopwright printed or
wrote: the data home (logs, reports, report cards, state), the Label Studio data dir (its own
token, password and database aside), the Prefect server's folder (its database holds every
flow-run log, parameter and artifact), `status` output, nor the repr of config objects.

The demo is the session's one run (`demo_run`, tests/conftest.py), shared with
tests/integration/test_demo_cli.py."""

from __future__ import annotations

from pathlib import Path
from secrets import token_hex

import pytest

from tests.support import REPO, run_loopwright

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
def demo(demo_run):
    """The demo run, and `status` (table and JSON) run on its home with the token set."""
    env = {**demo_run.env, "LOOPWRIGHT_LABELSTUDIO_TOKEN": demo_run.token}
    status = [
        run_loopwright(*args, "--config", str(demo_run.cfg), env=env, timeout=1200)
        for args in (["status"], ["status", "--json"])
    ]
    return {"run": demo_run, "proc": demo_run.proc, "status": status}


def test_demo_ran_the_whole_loop(demo):
    proc = demo["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "accuracy after retraining" in proc.stdout
    assert all(s.returncode == 0 for s in demo["status"])


def test_token_and_password_appear_nowhere(demo):
    run = demo["run"]
    secrets = {"token": run.token, "password": run.password}
    printed = [demo["proc"].stdout, demo["proc"].stderr]
    printed += [s.stdout + s.stderr for s in demo["status"]]
    for text in printed:
        for name, value in secrets.items():
            assert value not in text, f"the {name} was printed"
    home, prefect = run.home, run.prefect_dir
    assert (home / "reports" / "cards").is_dir() and any(prefect.glob("*.db")), "nothing to search"
    assert files_holding(home, secrets) == []
    assert files_holding(prefect, secrets) == []
    assert files_holding(run.ls_dir, secrets, skip=LS_OWN) == []
    summary = run.summary.read_text()  # --json-out
    assert [name for name, value in secrets.items() if value in summary] == []
    # the search finds what is there: the server's own token file holds it
    assert files_holding(run.ls_dir, secrets, skip=LS_OWN - {"token"}) == [
        ("token", str(run.ls_dir / "token"))
    ]


def test_config_and_adapter_never_show_the_token(monkeypatch):
    from curation.labelstudio import LabelStudioAdapter
    from flows.config import load_config, to_dict

    token = f"lwtok{token_hex(16)}"
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", token)
    cfg = load_config(REPO / "loopwright.toml")
    assert cfg.labelstudio.token.reveal() == token
    shown = [repr(cfg), str(cfg), repr(cfg.labelstudio), str(to_dict(cfg)), f"{cfg.labelstudio}"]
    adapter = LabelStudioAdapter(cfg.labelstudio.url, token)  # built offline: no server needed
    shown += [repr(adapter), str(adapter)]
    for text in shown:
        assert token not in text
