"""Start and stop the servers the demo needs, through the project's own scripts.

The scripts (`scripts/labelstudio.sh`, `scripts/prefect_server.sh`) are the one place
that knows how to start each server on 127.0.0.1; this module only calls them, and
remembers which servers it started so that it stops those and no others.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Services:
    labelstudio_url: str
    prefect_api_url: str
    started: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _run(script: str, action: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / script), action],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/{script} {action} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return proc.stdout


def labelstudio_env(url: str, data_dir: Path | None = None) -> dict[str, str]:
    port = urlparse(url).port or 8089
    default = os.environ.get("LS_DATA_DIR") or REPO_ROOT / ".labelstudio"
    return {"LS_PORT": str(port), "LS_DATA_DIR": str(data_dir or default)}


def prefect_env(port: int, server_dir: Path | None = None) -> dict[str, str]:
    default = os.environ.get("PREFECT_SERVER_DIR") or REPO_ROOT / ".prefect-server"
    return {"PREFECT_PORT": str(port), "PREFECT_SERVER_DIR": str(server_dir or default)}


def start_labelstudio(url: str, data_dir: Path | None = None) -> tuple[bool, str, dict[str, str]]:
    """Start the local Label Studio if it is not up: (started by us?, token, script env)."""
    env = labelstudio_env(url, data_dir)
    started = "already" not in _run("labelstudio.sh", "start", env)
    return started, _run("labelstudio.sh", "token", env).strip(), env


def start(
    labelstudio_url: str,
    prefect_port: int,
    ls_data_dir: Path | None = None,
    prefect_dir: Path | None = None,
) -> tuple[Services, str]:
    """Start what is not running yet; returns the services and the Label Studio token."""
    ls_env = labelstudio_env(labelstudio_url, ls_data_dir)
    pf_env = prefect_env(prefect_port, prefect_dir)
    svc = Services(
        labelstudio_url=labelstudio_url,
        prefect_api_url=f"http://127.0.0.1:{prefect_port}/api",
        env={**ls_env, **pf_env},
    )
    token = os.environ.get("LOOPWRIGHT_LABELSTUDIO_TOKEN", "")
    if urlparse(labelstudio_url).hostname in LOCAL_HOSTS:
        started, token, _ = start_labelstudio(labelstudio_url, ls_data_dir)
        if started:
            svc.started.append("labelstudio")
    out = _run("prefect_server.sh", "start", pf_env)
    if "already" not in out:
        svc.started.append("prefect")
    return svc, token


def local_token_file() -> Path:
    """Where `scripts/labelstudio.sh` keeps the token of the local server it started."""
    return Path(os.environ.get("LS_DATA_DIR", REPO_ROOT / ".labelstudio")) / "token"


def local_labelstudio_token() -> str:
    """The local server's token, or "" when that server was not started by the script."""
    token_file = local_token_file()
    return token_file.read_text().strip() if token_file.is_file() else ""


def stop(svc: Services) -> None:
    """Stop only the servers this process started."""
    if "prefect" in svc.started:
        _run("prefect_server.sh", "stop", svc.env)
    if "labelstudio" in svc.started:
        _run("labelstudio.sh", "stop", svc.env)
    svc.started.clear()
