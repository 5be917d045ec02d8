"""Fixtures of the reliability suite: a seeded digits data home, a trained champion, and the
Prefect test harness's URL for child processes. The Label Studio server (`ls_server`, with a
known token, that tests can stop, restart and search for) is the session's one, from
tests/conftest.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests import support
from tests.support import free_port


@pytest.fixture(scope="session", autouse=True)
def _prefect_logging_on_real_streams():
    """Set Prefect's logging up before any `CliRunner` swaps sys.stderr: a handler bound to
    a runner's stream breaks every later flow run once that stream is closed."""
    from prefect.logging.configuration import setup_logging

    setup_logging()


@pytest.fixture(autouse=True)
def _no_outer_loopwright_env(monkeypatch):
    """The engineer's own LOOPWRIGHT_* settings must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("LOOPWRIGHT_") and name != "LOOPWRIGHT_TEST_LS_PORT":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def prefect_api_url(prefect_harness) -> str:
    """The harness server's API URL, for `loopwright` child processes."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def write_config(
    path: Path, home: Path, ls_url: str = "http://127.0.0.1:9", extra: str = ""
) -> Path:
    """A loopwright.toml for one test: its own home, a Prefect port nobody listens on (so that
    flows use the test harness), small windows, one quick retry against Label Studio."""
    return support.write_config(
        path,
        home,
        extra=extra,
        labelstudio={
            "url": ls_url,
            "project_title": f"reliability-{path.parent.name}",
            "timeout_s": 10.0,
            "retries": 1,
        },
        prefect={"port": free_port()},
        drift={"report_sample_rows": 200},
        retrain={"max_epochs": 40, "finetune_epochs": 3},
        gate={"min_eval_rows": 10, "min_slice_rows": 10},
    )


def seed_home(cfg: Path, rows: int = 300) -> None:
    """The clean labeled digits the first champion learns from."""
    from flows.loop.open import open_loop
    from retrain.digits.simulation import seed_examples

    open_loop(str(cfg)).write_seed(seed_examples(seed_rows=rows, holdout_rows=200))


def log_digits(cfg: Path, n: int, prefix: str = "p", model_version: str = "v0001") -> list[str]:
    """Log `n` digit predictions (uniform-ish random probs) without a model: curation and
    sync need logged rows with real inputs, not a trained champion."""
    from flows.loop.open import open_loop
    from retrain.digits.data import split_digits
    from storage.prediction_log import PredictionLog, make_batch

    rt = open_loop(str(cfg))
    split = split_digits(seed_rows=300, holdout_rows=200, seed=0)
    images = np.resize(split.pool_x, (n, *split.pool_x.shape[1:]))
    x = images.reshape(-1, 1, 8, 8).astype(np.float32)
    rng = np.random.default_rng(n)
    probs = rng.dirichlet(np.ones(10), size=n)
    ids = [f"{prefix}-{i:05d}" for i in range(n)]
    batch = make_batch(
        request_ids=ids,
        features=rt.task.features(x),
        probs=probs,
        classes=rt.task.classes,
        model_version=model_version,
        inputs=[rt.task.encode_input(img) for img in images],
    )
    PredictionLog(rt.home).append(batch, classes=rt.task.classes)
    return ids


def train_champion(root: Path) -> Path:
    """A data home under `root` whose champion v0001 was trained by `retrain` on 300 seed
    digits."""
    from flows.retrain import retrain_flow

    cfg = write_config(root / "loopwright.toml", root / "home")
    seed_home(cfg)
    out = retrain_flow(force=True, reason="first champion", config_path=str(cfg))
    assert out["promoted"] and out["champion"] == "v0001", out["gate"]["reasons"]
    return root / "home"


@pytest.fixture(scope="session")
def champion_template(tmp_path_factory, prefect_harness) -> Path:
    """A data home whose champion v0001 was trained by `retrain` on 300 seed digits, once per
    run: under pytest-xdist the first worker to need it trains it in the run's shared temp
    dir (under a file lock) and the others wait and read it, instead of training it again.
    Tests work on copies (`clone_home`); none may change the template."""
    from filelock import FileLock

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return train_champion(tmp_path_factory.mktemp("champion-template"))
    root = tmp_path_factory.getbasetemp().parent / "champion-template"  # the run's, shared
    with FileLock(f"{root}.lock"):
        if not (root / "trained").exists():
            shutil.rmtree(root, ignore_errors=True)  # a half-trained one from a killed worker
            root.mkdir()
            train_champion(root)
            (root / "trained").touch()
    return root / "home"


def clone_home(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest
