"""Open the loop over a data home: what every flow, command and driver does first.

Why one function: a flow run started by a deployment, the CLI, the demo or a test reads the
same `loopwright.toml` the same way and finds the home in the same state (made if missing,
leftovers of writers that died removed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.config import load_config
from flows.loop.engine import Loop
from storage.home import DataHome
from storage.settings import StorageSettings


def open_home(root: Path, storage: StorageSettings | None = None) -> DataHome:
    """The data home at `root`, made if missing, with dead writers' leftovers cleaned
    (`DataHome.ensure` runs `storage.maintenance.clean_home`); its logs on object storage
    when `[storage] logs_url` says so."""
    storage = storage or StorageSettings()
    return DataHome(root.resolve(), storage.logs_url, storage.endpoint_url).ensure()


def open_loop(config_path: str | None = None, home: str | None = None, **loop_kwargs: Any) -> Loop:
    """`Loop(load_config(config_path), <home or [home] path>, **loop_kwargs)`."""
    cfg = load_config(config_path)
    root = Path(home) if home else cfg.home_path
    return Loop(cfg, open_home(root, cfg.storage), **loop_kwargs)
