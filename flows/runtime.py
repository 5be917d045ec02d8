"""What every flow needs at its edge: the config, the data home, the task, the models.

Flows call `open_runtime(config_path)` first thing, so a flow run started by a
deployment, the CLI or a test all read the same `loopwright.toml` the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from flows.config import Config, load_config
from retrain.task import Task, load_task
from storage.home import DataHome
from storage.queries import Queries
from storage.registry import Registry

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Runtime:
    cfg: Config
    home: DataHome

    @cached_property
    def task(self) -> Task:
        return load_task(self.cfg.task.plugin)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.home)

    @cached_property
    def queries(self) -> Queries:
        return Queries(self.home)

    def predictor(self, version: str):
        """predict_proba for a registry version, loaded with its checksum verified."""
        from retrain.model import load_module, predict_proba

        state, _meta = self.registry.load(version)
        module = load_module(self.task, state)

        def predict(x: np.ndarray) -> np.ndarray:
            return predict_proba(module, x)

        return predict

    def labelstudio(self):
        """The Label Studio adapter, with the token from the environment.

        Falls back to the token file that `scripts/labelstudio.sh` writes next to the
        server it started, so that a person who ran `make labelstudio-up` can use the CLI
        without exporting anything; the token is never printed.
        """
        from curation.labelstudio import LabelStudioAdapter

        token = self.cfg.labelstudio.token.reveal() or local_labelstudio_token()
        if not token:
            raise RuntimeError(
                "no Label Studio token: set LOOPWRIGHT_LABELSTUDIO_TOKEN "
                "(scripts/labelstudio.sh token prints the one of the local server)"
            )
        return LabelStudioAdapter(
            self.cfg.labelstudio.url,
            token,
            timeout=self.cfg.labelstudio.timeout_s,
            retries=self.cfg.labelstudio.retries,
        )


def local_labelstudio_token() -> str:
    data_dir = Path(os.environ.get("LS_DATA_DIR", REPO_ROOT / ".labelstudio"))
    token_file = data_dir / "token"
    return token_file.read_text().strip() if token_file.is_file() else ""


def open_runtime(config_path: str | None = None, home: str | None = None) -> Runtime:
    cfg = load_config(config_path)
    root = Path(home) if home else cfg.home_path
    return Runtime(cfg=cfg, home=DataHome(root.resolve()).ensure())
