"""What every test suite shares: a loopwright.toml for a temporary data home, free ports, and
one real `loopwright demo` run (see `run_demo`; tests/conftest.py runs it once per session)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")

# Windows a tiny scenario (scenarios/tiny.toml) fills; every test config starts from these.
SMALL_DRIFT = {"reference_rows": 100, "window_rows": 100}

# The demo run's config: small label budgets (a round is one production batch).
DEMO_TABLES: dict[str, dict[str, object]] = {
    "drift": {"report_sample_rows": 300},
    "curation": {"budget_per_batch": 15},
    "trigger": {"min_labels": 10, "window_labels": 30},
    "demo": {"holdout_rows": 300},
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    raise TypeError(f"{value!r} is a {type(value).__name__}: use a bool, number, str or Path")


def write_config(path: Path, home: Path, extra: str = "", **tables: dict[str, object]) -> Path:
    """Write a loopwright.toml for one test: its own data home, small drift windows, then the
    keys of `tables` (`drift={"window_rows": 50}` overrides, `gate={...}` adds a table) and
    `extra`, raw TOML appended as is.

    >>> import tempfile
    >>> cfg = Path(tempfile.mkdtemp()) / "lw.toml"
    >>> cfg = write_config(cfg, Path("h"), gate={"min_eval_rows": 10})
    >>> print(cfg.read_text())
    [home]
    path = "h"
    [drift]
    reference_rows = 100
    window_rows = 100
    [gate]
    min_eval_rows = 10
    <BLANKLINE>
    """
    merged: dict[str, dict[str, object]] = {"home": {"path": home}, "drift": dict(SMALL_DRIFT)}
    for name, keys in tables.items():
        merged.setdefault(name, {}).update(keys)
    lines = []
    for name, keys in merged.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the engineer's LOOPWRIGHT_* settings and Prefect
    API URL (a `loopwright` child process must read only the test's config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPWRIGHT_", "PREFECT_API"))}
    return {**env, **extra}


def run_loopwright(
    *args: str, env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LOOPWRIGHT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class DemoRun:
    """One finished `loopwright demo`: its process, config, folders and the Label Studio
    token and password it ran with (preset, so that tests can search for them)."""

    proc: subprocess.CompletedProcess
    root: Path
    cfg: Path
    env: dict[str, str]
    ls_port: int
    prefect_port: int
    token: str
    password: str

    def __repr__(self) -> str:  # pytest prints fixtures of failing tests: no secrets there
        return f"DemoRun(root={self.root}, returncode={self.proc.returncode})"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def ls_dir(self) -> Path:
        """The Label Studio server's data dir: its token, password, database and log."""
        return self.root / "ls"

    @property
    def prefect_dir(self) -> Path:
        """The Prefect server's folder: its database holds every flow-run log and artifact."""
        return self.root / "prefect"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"


def run_demo(root: Path) -> DemoRun:
    """Run `loopwright demo` on scenarios/tiny.toml as a user does: it starts its own Label
    Studio (with a preset token and password) and Prefect server on free ports, runs the
    loop and stops both."""
    ls_port, prefect_port = free_port(), free_port()
    cfg = write_config(
        root / "loopwright.toml",
        root / "home",
        labelstudio={"url": f"http://127.0.0.1:{ls_port}"},
        prefect={"port": prefect_port},
        **DEMO_TABLES,
    )
    token, password = f"lwtok{secrets.token_hex(16)}", f"lwpw{secrets.token_hex(12)}"
    env = clean_env(LS_DATA_DIR=str(root / "ls"), PREFECT_SERVER_DIR=str(root / "prefect"))
    demo_env = {**env, "LS_TOKEN": token, "LS_PASSWORD": password}  # the server's first start
    proc = run_loopwright(
        "demo",
        "--scenario",
        "scenarios/tiny.toml",
        "--config",
        str(cfg),
        "--json",
        str(root / "summary.json"),
        env=demo_env,
    )
    return DemoRun(proc, root, cfg, env, ls_port, prefect_port, token, password)
