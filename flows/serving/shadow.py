"""Shadow scoring off the response path: the `shadow` alias scores the inputs a request
brought, after (and whatever) the answer, and its rows are logged with role `shadow` under
the id `<request_id>#shadow` (as `flows/loop/score.py` keys them: the log's id stays
unique per row, and curation and accuracy estimates read champion rows only).

Why a thread with a bounded queue: a shadow must never slow or fail the champion's answer.
Requests only append to the queue (microseconds); one thread drains everything waiting and
scores it as one batch. When the queue is full (the shadow cannot keep up), new instances
are dropped and counted (`dropped`, `/metrics`), never waited for.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from flows.serving.sink import Scored
from storage.prediction_log import SHADOW_SUFFIX


@dataclass(frozen=True)
class ShadowJob:
    version: str
    request_ids: list[str]
    x: np.ndarray  # model inputs (n, *input_shape)
    features: np.ndarray
    inputs: list[bytes]
    attrs: list[dict[str, str]]
    ts: list[datetime]


class ShadowScorer:
    """`offer(job)` queues a request's inputs for the shadow; a thread scores and logs them."""

    def __init__(
        self,
        predictor: Callable[[str], Callable[[np.ndarray], np.ndarray]],
        submit: Callable[[Scored], object],
        max_queue: int = 10_000,
        on_scored: Callable[[str, int], None] | None = None,
    ) -> None:
        self._predictor, self._submit = predictor, submit
        self.max_queue = max_queue
        self._on_scored = on_scored
        self._jobs: deque[ShadowJob] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.scored = 0
        self.errors = 0
        self.last_error: str | None = None
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def offer(self, job: ShadowJob) -> bool:
        """Queue `job`; False (and counted as dropped) when the queue is full or closed."""
        n = len(job.request_ids)
        with self._cond:
            if self._closed or self._queued + n > self.max_queue:
                self.dropped += n
                return False
            self._jobs.append(job)
            self._queued += n
            self._cond.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs and self._closed:
                    return
                jobs, self._jobs, self._queued = list(self._jobs), deque(), 0
                self._busy = True
            try:
                self._score(jobs)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _score(self, jobs: list[ShadowJob]) -> None:
        by_version: dict[str, list[ShadowJob]] = {}
        for job in jobs:
            by_version.setdefault(job.version, []).append(job)
        for version, group in by_version.items():
            n = sum(len(j.request_ids) for j in group)
            try:
                probs = self._predictor(version)(np.concatenate([j.x for j in group]))
                self._submit(
                    Scored(
                        request_ids=[r + SHADOW_SUFFIX for j in group for r in j.request_ids],
                        model_version=version,
                        role="shadow",
                        features=np.concatenate([j.features for j in group]),
                        probs=probs,
                        inputs=[b for j in group for b in j.inputs],
                        attrs=[a for j in group for a in j.attrs],
                        ts=[t for j in group for t in j.ts],
                    )
                )
            except Exception as exc:  # a broken shadow is reported, never raised into serving
                self.errors += n
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            self.scored += n
            if self._on_scored is not None:
                self._on_scored(version, n)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is scored and submitted (tests, shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
