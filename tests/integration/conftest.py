"""Servers the integration tests share: Label Studio (`labelstudio`, `ls_server`) and the
Prefect test harness come from tests/conftest.py; here, one Prefect server started by the
project's own script (`prefect_server`), for the tests that run `loopwright` as a user does
against a server they started with `make prefect-up`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, clean_env, free_port

SCRIPT = REPO / "scripts" / "prefect_server.sh"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> str:
    """The API URL of a Prefect server started once per session by scripts/prefect_server.sh
    (its start costs ~10 s; tests/integration/test_monitor_only.py and
    test_served_deployments.py share it, each on its own data home and deployment names)."""
    port = free_port()
    env = {
        **clean_env(),
        "PREFECT_PORT": str(port),
        "PREFECT_SERVER_DIR": str(tmp_path_factory.mktemp("prefect-server")),
        "LOOPWRIGHT_VENV": str(Path(sys.executable).parents[1]),  # this test's Prefect
    }

    def run(action: str) -> None:
        proc = subprocess.run(
            [str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise RuntimeError(f"prefect_server.sh {action}: {proc.stdout}{proc.stderr}")

    run("start")
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        run("stop")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> dict:
    """An S3 stand-in (moto) on 127.0.0.1 started once per session by scripts/s3.sh, with the
    bucket `loopwright`; moto takes any credentials, boto needs some (set here for the
    session: tests of the logs on object storage give each home its own prefix)."""
    import os

    port = free_port()
    env = {
        **clean_env(),
        "S3_PORT": str(port),
        "S3_DIR": str(tmp_path_factory.mktemp("s3-server")),
        "PY": sys.executable,
    }
    script = REPO / "scripts" / "s3.sh"

    def run(action: str) -> None:
        proc = subprocess.run(
            [str(script), action], env=env, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"s3.sh {action}: {proc.stdout}{proc.stderr}")

    for key, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(key, value)
    run("start")
    try:
        yield {"endpoint_url": f"http://127.0.0.1:{port}", "bucket": "loopwright"}
    finally:
        run("stop")
