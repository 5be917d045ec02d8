"""The whole loop, as a user runs it: `loopwright demo` starts its own Label Studio and
Prefect server (on test ports), replays a tiny drift scenario, and must recover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")


def run(args, env, timeout=900):
    return subprocess.run(
        [LOOPWRIGHT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    cfg = root / "loopwright.toml"
    cfg.write_text(
        f"""
[home]
path = "{root / "home"}"
[labelstudio]
url = "http://127.0.0.1:8093"
[prefect]
port = 4293
[drift]
reference_rows = 100
window_rows = 100
report_sample_rows = 300
[curation]
budget_per_batch = 15
[trigger]
min_labels = 10
window_labels = 30
[demo]
batches_per_round = 1
holdout_rows = 300
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPWRIGHT_", "PREFECT_API"))}
    env.update(LS_DATA_DIR=str(root / "ls"), PREFECT_SERVER_DIR=str(root / "prefect"))
    proc = run(
        [
            "demo",
            "--scenario",
            "scenarios/tiny.toml",
            "--config",
            str(cfg),
            "--json-out",
            str(root / "summary.json"),
        ],
        env,
    )
    yield {"proc": proc, "root": root, "cfg": cfg, "env": env}


def test_demo_recovers_from_drift(demo_run):
    proc = demo_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((demo_run["root"] / "summary.json").read_text())
    assert summary["champion_before"] == "v0001"
    assert summary["champion_after"] != "v0001"
    assert summary["accuracy_after_retraining"] > summary["accuracy_under_drift"] + 0.05
    assert summary["labels_spent"] > 0
    assert Path(summary["report_card"]).is_file()
    assert "accuracy after retraining" in proc.stdout


def test_status_json_describes_the_demo_home(demo_run):
    proc = run(["status", "--json", "--config", str(demo_run["cfg"])], demo_run["env"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    for key in ("champion", "challenger", "history", "last_gate", "pending_labels"):
        assert key in status
    assert status["champion"] != "v0001"
    assert status["history"][0]["to"] == "v0001"
    assert isinstance(status["last_gate"]["promote"], bool)


def test_demo_leaves_no_server_running(demo_run):
    import urllib.request

    for url in ("http://127.0.0.1:8093/health/", "http://127.0.0.1:4293/api/health"):
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)


def test_token_never_printed(demo_run):
    token = (demo_run["root"] / "ls" / "token").read_text().strip()
    assert len(token) >= 16
    proc = demo_run["proc"]
    assert token not in proc.stdout and token not in proc.stderr
