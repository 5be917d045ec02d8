"""What every test suite shares: a loopwright.toml for a temporary data home, free ports, the
session's one Label Studio server (`LSServer`, started by tests/conftest.py) and one real
`loopwright demo` run (see `run_demo`; tests/conftest.py runs it once per session)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")
LS_SCRIPT = REPO / "scripts" / "labelstudio.sh"

# Windows a tiny scenario (scenarios/tiny.toml) fills; every test config starts from these.
SMALL_DRIFT = {"reference_rows": 100, "window_rows": 100}

# The demo run's config: small label budgets (a round is one production batch).
DEMO_TABLES: dict[str, dict[str, object]] = {
    "drift": {"report_sample_rows": 300},
    "curation": {"budget_per_batch": 15},
    "trigger": {"min_labels": 10, "window_labels": 30},
    "demo": {"holdout_rows": 300, "feedback_share": 0.3},
    # online: tiny's 50-row batches, so a rollout can reach 100 % within its 4 batches
    "rollout": {"enabled": True, "steps": [50.0, 100.0], "min_predictions": 10, "min_labels": 3},
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
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


# The in-process loop tests' config: the wine task, labels enough to retrain within a few batches.
WINE_LOOP_TABLES: dict[str, dict[str, object]] = {
    "task": {"plugin": "tests.wine_task:TASK"},
    "curation": {"budget_per_batch": 10},
    "trigger": {"min_labels": 10, "window_labels": 30},
    "retrain": {"seed_rows": 60},
    "gate": {"min_eval_rows": 10},
}


def wine_loop(
    root: Path, tables: dict[str, dict[str, object]] | None = None, extra: str = "", **loop_kw
) -> tuple[Any, Any]:
    """A `Loop` on a fresh home under `root` (config: `WINE_LOOP_TABLES` plus `tables`), with
    an in-memory Label Studio and an error-free simulated annotator, and the wine-shift world
    it replays (batches, seed examples, truth). `extra`: raw TOML appended (`[[cohort]]`
    tables). `loop_kw` go to `Loop` (`artifacts`, `steps`).
    Why shared: the engine and online tests must build the same loop to compare decisions."""
    from curation.labelstudio_memory import InMemoryLabelStudio
    from flows.config import load_config
    from flows.loop.engine import Loop

    path = write_config(
        root / "lw.toml", root / "home", extra, **{**WINE_LOOP_TABLES, **(tables or {})}
    )
    cfg = load_config(path, env={})
    sim = Loop(cfg, root / "home").task.simulation()
    scenario = sim.load_scenario(sim.find_scenario("wine-shift"))
    world = sim.world(scenario, scenario.seed, seed_rows=cfg.retrain.seed_rows, holdout_rows=40)
    ls = InMemoryLabelStudio()
    annotator = world.annotator(0.0, "sim@test")
    loop = Loop(cfg, root / "home", labelstudio=lambda: ls, annotator=annotator, **loop_kw)
    return loop, world


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
    *args: str, env: dict[str, str], timeout: float = 900, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LOOPWRIGHT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def session_ls_port() -> int:
    """The session's Label Studio port: LOOPWRIGHT_TEST_LS_PORT (default 8091), the port an
    engineer owns; a second pytest-xdist worker (gw1, ...) takes a free port instead, so that
    parallel workers neither share a server nor take a neighbour's port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker != "gw0":
        return free_port()
    return int(os.environ.get("LOOPWRIGHT_TEST_LS_PORT", "8091"))


@dataclass
class LSServer:
    """The session's Label Studio server: its port, data dir, and the token and password it
    was first started with (preset, so that tests can search for them and restart it)."""

    url: str
    port: int
    data_dir: Path
    token: str
    password: str

    def __repr__(self) -> str:  # pytest prints fixtures of failing tests: no secrets there
        return f"LSServer(url={self.url!r}, data_dir={self.data_dir})"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "LS_PORT": str(self.port), "LS_DATA_DIR": str(self.data_dir)}

    def script(self, action: str, timeout: float = 400, **extra: str) -> str:
        """scripts/labelstudio.sh `action` on this server, exactly as an operator runs it."""
        proc = subprocess.run(
            [str(LS_SCRIPT), action],
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"scripts/labelstudio.sh {action} failed ({proc.returncode}):\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
        return proc.stdout

    def start(self) -> None:
        self.script("start")

    def stop(self) -> None:
        self.script("stop", timeout=60)


def start_ls_server(data_dir: Path) -> LSServer:
    """Install Label Studio's venv if missing, then start a server on `session_ls_port()` with a
    preset token and password (LS_TOKEN, LS_PASSWORD on its first start)."""
    port = session_ls_port()
    server = LSServer(
        url=f"http://127.0.0.1:{port}",
        port=port,
        data_dir=data_dir,
        token=f"lwtok{secrets.token_hex(16)}",
        password=f"lwpw{secrets.token_hex(12)}",
    )
    venv = Path(os.environ.get("LS_VENV", REPO / ".venv-labelstudio"))
    if not (venv / "bin" / "label-studio").exists():
        server.script("install", timeout=900)
    try:
        server.script("start", LS_TOKEN=server.token, LS_PASSWORD=server.password)
    except RuntimeError:
        subprocess.run([str(LS_SCRIPT), "stop"], env=server.env, capture_output=True, timeout=60)
        raise
    return server


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


def save_screenshot(page, path: Path, label: str) -> int:
    """A full-page PNG of `page` at `path` (a test artifact in pytest's tmp dir), checked to
    be a real image, not an empty page; returns its size in bytes."""
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, (path, len(data))
    print(f"{label} screenshot: {path} ({len(data)} bytes)")
    return len(data)
