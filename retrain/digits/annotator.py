"""The simulated annotator: a stand-in for people in the demo and the tests.

It answers Label Studio tasks from ground truth through the same HTTP API a person's
browser uses (or the same calls on the benchmark's in-process Label Studio), and makes
mistakes at a chosen rate, so the loop is exercised on noisy labels. The loop's own code
never imports it.

`truth` is read when answering, so a caller may keep adding to it. Each answer is a pure
function of (seed, request_id, truth): labeling the same task twice, or in
another order, gives the same label.

>>> ann = SimulatedAnnotator({"r1": "3"}, classes=[str(i) for i in range(10)])
>>> ann.answer("r1"), ann.answer("unknown")
('3', None)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np


class _Annotates(Protocol):
    """What answering needs from the labeler: a `curation.labelstudio_annotate.AnnotatingAdapter`
    (a real server) or a `curation.labelstudio_memory.InMemoryLabelStudio` (the benchmark's).
    The production `LabelStudioAdapter` has neither method, on purpose: the loop never answers."""

    def pending_tasks(self, project_id: int) -> list[tuple[int, str]]: ...

    def annotate(
        self, task_id: int, label: str, lead_time: float | None = None, annotator: str | None = None
    ) -> int: ...


class SimulatedAnnotator:
    def __init__(
        self,
        truth: Mapping[str, str],
        classes: Sequence[str],
        error_rate: float = 0.0,
        seed: int = 0,
        name: str = "sim-annotator",
    ) -> None:
        self.classes = tuple(str(c) for c in classes)
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes = {list(classes)} must hold at least 2 distinct class names")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate = {error_rate} must be within [0, 1] (0.05 = 5% wrong)")
        if not name.strip():
            raise ValueError("name is empty: give the annotator a name, e.g. 'sim-annotator'")
        # kept by reference, not copied: a simulator may add the truth of new batches later
        self.truth = truth
        self.error_rate = float(error_rate)
        self.seed = int(seed)
        self.name = name

    def __repr__(self) -> str:
        return (
            f"SimulatedAnnotator(name={self.name!r}, error_rate={self.error_rate}, seed={self.seed}, "
            f"known={len(self.truth)})"
        )

    def _rng(self, request_id: str) -> np.random.Generator:
        digest = hashlib.sha256(request_id.encode()).digest()
        return np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])

    def answer(self, request_id: str) -> str | None:
        """The label this annotator gives for a request, or None if it does not know it."""
        true = self.truth.get(request_id)
        if true is None:
            return None
        true = str(true)
        if true not in self.classes:
            raise ValueError(
                f"truth[{request_id!r}] = {true!r} is not one of the classes {list(self.classes)}"
            )
        rng = self._rng(request_id)
        if rng.random() < self.error_rate:
            others = [c for c in self.classes if c != true]
            return others[int(rng.integers(len(others)))]
        return true

    def lead_time(self, request_id: str) -> float:
        """Seconds spent on the task (for Label Studio's statistics): 1 to 5, per request."""
        return round(float(1.0 + 4.0 * self._rng(request_id + "/time").random()), 2)

    def label_pending(self, adapter: _Annotates, project_id: int, limit: int | None = None) -> int:
        """Answer the project's unannotated tasks (oldest first); returns how many were labeled.

        Tasks whose request_id it does not know are left for someone else.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit = {limit} must be >= 0 or None (no limit)")
        done = 0
        for task_id, request_id in adapter.pending_tasks(project_id):
            if limit is not None and done >= limit:
                break
            label = self.answer(request_id)
            if label is None:
                continue
            adapter.annotate(
                task_id, label, lead_time=self.lead_time(request_id), annotator=self.name
            )
            done += 1
        return done
