"""Fault 4: `loopwright retrain --force` killed during training, and a challenger that fails the
gate. Neither moves `champion` nor adds a champion move to the alias history, and no
half-written model version is ever visible."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from storage.datasets import list_datasets
from storage.home import DataHome
from storage.registry import Registry
from tests.reliability.conftest import clone_home, write_config
from tests.reliability.helpers import LOOPWRIGHT, REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, champion_template):
    """A copy of a home whose champion v0001 was trained by `retrain` on seed digits."""
    root = tmp_path_factory.mktemp("retrain")
    clone_home(champion_template, root / "home")
    return {"root": root, "home": DataHome(root / "home")}


def snapshot(home: DataHome) -> dict:
    reg = Registry(home)
    return {"versions": reg.versions(), "aliases": reg.aliases(), "history": reg.history()}


def champion_moves(history: list[dict]) -> list[dict]:
    return [e for e in history if e["alias"] == "champion"]


def test_kill_during_training_changes_nothing_visible(trained, prefect_api_url, tmp_path):
    """SIGKILL while Lightning trains (the dataset manifest is written, the model is not)."""
    cfg = write_config(
        tmp_path / "long.toml",
        trained["root"] / "home",
        extra="",
    )
    # training long enough that the kill lands in it: fit_samples = 0 makes a fine-tune run
    # every finetune_epochs (the default 6000 samples cap it to a few seconds on a quiet machine)
    text = cfg.read_text().replace("max_epochs = 40", "max_epochs = 5000")
    text = text.replace("finetune_epochs = 3", "finetune_epochs = 5000\nfit_samples = 0")
    assert "fit_samples = 0" in text and "max_epochs = 5000" in text
    cfg.write_text(text)
    home = trained["home"]
    rng = random.Random(4)
    for trial in range(1):
        before = snapshot(home)
        datasets = len(list_datasets(home))
        env = {**os.environ, "PREFECT_API_URL": prefect_api_url}
        env.pop("LOOPWRIGHT_LABELSTUDIO_TOKEN", None)
        proc = subprocess.Popen(
            [LOOPWRIGHT, "retrain", "--force", "--reason", "crash test", "--config", str(cfg)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while len(list_datasets(home)) == datasets:  # training starts right after this file
            assert proc.poll() is None, "retrain ended before training"
            assert time.monotonic() < deadline, "retrain never reached training"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.5, 2.0))
        assert proc.poll() is None, "training finished before the kill: raise max_epochs"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert snapshot(home) == before, f"trial {trial}: the registry changed"
        home.ensure()  # the next open: nothing half-written remains either
        assert [p.name for p in home.models.iterdir() if p.name.startswith(".")] == []
        assert snapshot(home) == before


def test_failed_gate_keeps_champion_and_its_history(trained, tmp_path):
    """A challenger trained for one epoch at a tiny learning rate is far worse: the gate
    refuses it; only the `challenger` alias records it."""
    from flows.retrain import retrain_flow

    cfg = write_config(
        tmp_path / "bad.toml",
        trained["root"] / "home",
        extra="",
    )
    text = cfg.read_text().replace(
        "[retrain]\n", '[retrain]\nmode = "scratch"\nlearning_rate = 0.00001\n'
    )
    cfg.write_text(text.replace("max_epochs = 40", "max_epochs = 1"))
    home = trained["home"]
    before = snapshot(home)
    out = retrain_flow(force=True, reason="bad challenger", config_path=str(cfg))
    assert out["retrained"] and not out["promoted"]
    assert any("accuracy" in r for r in out["gate"]["reasons"])
    after = snapshot(home)
    assert after["aliases"]["champion"] == before["aliases"]["champion"]
    assert champion_moves(after["history"]) == champion_moves(before["history"])
    new = after["history"][len(before["history"]) :]
    assert after["history"][: len(before["history"])] == before["history"]
    assert [(e["alias"], e["to"]) for e in new] == [("challenger", out["challenger"])]
    assert Registry(home).load(out["challenger"])[1]["version"] == out["challenger"]  # whole
    assert Path(out["gate"]["card_html"]).is_file()
