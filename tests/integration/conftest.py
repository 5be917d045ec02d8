"""A real Label Studio server for the integration tests, started once per session.

It runs on its own port (8091; override with LOOPWRIGHT_TEST_LS_PORT) and its own data
directory under pytest's tmp dir, so it never touches a demo's server or data.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "labelstudio.sh"


def _script(action: str, env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(
        [str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/labelstudio.sh {action} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout.strip()


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory) -> tuple[str, str]:
    """(url, token) of a Label Studio server started for this test session."""
    env = {
        **os.environ,
        "LS_PORT": os.environ.get("LOOPWRIGHT_TEST_LS_PORT", "8091"),
        "LS_DATA_DIR": str(tmp_path_factory.mktemp("labelstudio")),
    }
    venv = Path(env.get("LS_VENV", REPO / ".venv-labelstudio"))
    if not (venv / "bin" / "label-studio").exists():
        _script("install", env, timeout=900)
    try:
        _script("start", env, timeout=300)
    except RuntimeError as exc:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield _script("url", env, timeout=30), _script("token", env, timeout=30)
    finally:
        _script("stop", env, timeout=60)
