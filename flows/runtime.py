"""What every flow needs at its edge: the config, the data home, the task, the models.

Flows call `open_runtime(config_path)` first thing, so a flow run started by a
deployment, the CLI or a test all read the same `loopwright.toml` the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

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
        return load_task(self.cfg.task.plugin, self.cfg.task.classes)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.home)

    @cached_property
    def queries(self) -> Queries:
        return Queries(self.home, self.cfg.storage)

    @cached_property
    def n_features(self) -> int | None:
        """Length of the task's feature vectors: what every logged `features` row must have.

        Measured by running the task's own `features` on one blank input; a task that cannot
        say (no input shape or feature function) falls back to the rows already logged, so a
        log never mixes vector lengths either way.
        """
        shape = getattr(self.task, "input_shape", None)
        features = getattr(self.task, "features", None)
        if shape and features is not None:
            try:
                return int(np.asarray(features(np.zeros((1, *shape), np.float32))).shape[1])
            except (ValueError, TypeError, IndexError):
                pass
        logged = self.queries.recent_predictions(1, columns=["features"])
        return len(logged.column("features")[0]) if logged.num_rows else None

    def logged_request_ids(self, request_ids: list[str]) -> set[str]:
        """Which of `request_ids` are already in the prediction log (not merely seed examples)."""
        known = self.queries.known_request_ids(request_ids)
        both = known & self.queries.seed_ids()
        if not both:
            return known
        logged = self.queries.prediction_frame(sorted(both), columns=["request_id"])
        return (known - both) | set(logged.column("request_id").to_pylist())

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
        without exporting anything; only for a server on this machine, and the adapter
        names that file when the server refuses the token. The token is never printed.
        """
        from curation.labelstudio import LabelStudioAdapter

        token, source = labelstudio_token(self.cfg)
        return LabelStudioAdapter(
            self.cfg.labelstudio.url,
            token,
            timeout=self.cfg.labelstudio.timeout_s,
            retries=self.cfg.labelstudio.retries,
            token_source=source,
        )


def labelstudio_token(cfg: Config) -> tuple[str, str]:
    """(token, where it came from): the environment, else, for a server on this machine, the
    token file of the local server `scripts/labelstudio.sh` started."""
    url = cfg.labelstudio.url
    if cfg.labelstudio.token:
        name = (
            "LOOPWRIGHT_LABELSTUDIO_TOKEN"
            if os.environ.get("LOOPWRIGHT_LABELSTUDIO_TOKEN")
            else "LABEL_STUDIO_API_KEY"
        )
        return cfg.labelstudio.token.reveal(), f"the environment ({name})"
    if urlparse(url).hostname in {"127.0.0.1", "localhost"}:
        token = local_labelstudio_token()
        if token:
            return token, (
                f"{local_token_file()}, the token of the local server scripts/labelstudio.sh "
                "started (LOOPWRIGHT_LABELSTUDIO_TOKEN is not set)"
            )
    raise RuntimeError(
        f"no Label Studio token for {url}: set LOOPWRIGHT_LABELSTUDIO_TOKEN to an admin's token "
        "of that server (`scripts/labelstudio.sh token` prints the one of the local server)"
    )


def local_token_file() -> Path:
    return Path(os.environ.get("LS_DATA_DIR", REPO_ROOT / ".labelstudio")) / "token"


def local_labelstudio_token() -> str:
    token_file = local_token_file()
    return token_file.read_text().strip() if token_file.is_file() else ""


def open_runtime(config_path: str | None = None, home: str | None = None) -> Runtime:
    cfg = load_config(config_path)
    root = Path(home) if home else cfg.home_path
    return Runtime(cfg=cfg, home=DataHome(root.resolve()).ensure())
