"""Which models serve, and the loaded models by version: a new champion, canary or shadow is
picked up without a restart.

Why a stat per request: `registry.json` is replaced atomically (a new file) on every alias
move or weight change, so its inode and mtime change; `os.stat` costs microseconds, so each
request sees the routing of the moment it arrived, and the file is re-read only when it
changed. A version's weights never change (the registry is immutable per version), so a
loaded model is kept by version, with its checksum verified once at load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np

from retrain.task import Task
from storage.home import DataHome, StorageError
from storage.registry import Registry
from storage.routing import Routing, read_routing

Predict = Callable[[np.ndarray], np.ndarray]
_NO_FILE = (0, 0, 0)


class ServedModels:
    """`routing()` -> the routing now; `predictor(version)` -> its predict_proba."""

    def __init__(self, home: DataHome, task: Task, threads: int = 1) -> None:
        self.home, self.task, self.threads = home, task, threads
        self.registry = Registry(home)
        self._lock = threading.Lock()
        self._predictors: dict[str, Predict] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._routing = Routing(None, None, 0.0, None, 0)
        self.reloads = 0  # routing re-reads (tests, /metrics)

    def _file_stamp(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.home.registry_file)
        except FileNotFoundError:
            return _NO_FILE
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def routing(self) -> Routing:
        """The routing as of now (re-read when registry.json changed), its models loaded."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return self._routing
        with self._lock:
            if stamp != self._stamp:
                routing = read_routing(self.home)
                self._routing, self._stamp = routing, stamp
                self.reloads += 1
        for version in (routing.champion, routing.canary, routing.shadow):
            if version is not None:
                self.predictor(version)  # load at the switch, not on a request's path
        return self._routing

    def predictor(self, version: str) -> Predict:
        """predict_proba of `version`, loaded once; refused when it is another task's model."""
        found = self._predictors.get(version)
        if found is not None:
            return found
        from retrain.model import predictor

        with self._lock:
            found = self._predictors.get(version)
            if found is not None:
                return found
            state, meta = self.registry.load(version)  # sha256 checked
            if meta.get("task") != self.task.name or list(meta.get("classes") or []) != list(
                self.task.classes
            ):
                raise StorageError(
                    f"model {version} is a {meta.get('task')!r} model with classes "
                    f"{meta.get('classes')}, the served task is {self.task.name!r} "
                    f"{list(self.task.classes)}: point the alias at a model of this task"
                )
            predict = predictor(self.task, state, self.threads)
            self._predictors[version] = predict
            return predict

    @property
    def loaded(self) -> list[str]:
        return sorted(self._predictors)
