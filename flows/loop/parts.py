"""What a stage reads of the loop: the ports and the caches `flows.loop.engine.Loop` holds.

Why a Protocol of its own: the stage modules take the loop as their first argument and the
engine calls the stage modules, so naming `Loop` in them would tie each to the engine and
back; they name these parts instead (a test may hand a stage any object that has them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from flows.config import Config
    from retrain.task import Task
    from storage.home import DataHome
    from storage.queries import Queries
    from storage.registry import Registry


class LoopParts(Protocol):
    """The config, the data home and what is read from it, the labeler, and how sub-steps
    run (see `flows.loop.engine.Loop` for each)."""

    cfg: Config
    home: DataHome
    artifacts: bool
    annotator: Any
    steps: Callable[..., Any]
    last_card: dict | None

    @property
    def task(self) -> Task: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def queries(self) -> Queries: ...

    @property
    def threads(self) -> int: ...

    @property
    def n_features(self) -> int | None: ...

    def decode_inputs(self, inputs: Sequence[bytes]) -> np.ndarray: ...

    def logged_request_ids(self, request_ids: list[str]) -> set[str]: ...

    def predictor(self, version: str) -> Callable[[np.ndarray], np.ndarray]: ...

    def served_predictor(self, version: str) -> Callable[[np.ndarray], np.ndarray]: ...

    def cached_drift_reference(self, key: tuple, make: Callable[[], Any]) -> Any: ...

    def labelstudio(self) -> Any: ...
