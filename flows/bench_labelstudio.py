"""`bench loop --via-labelstudio`: the replay's labels asked of a real Label Studio server.

Why: the in-process labeler calls the simulated annotator's rule directly; this one sends
the same rows through the path production uses, so the benchmark also exercises it. Each
call imports the picked rows as tasks with the champion's guess as pre-annotation (as
`curate` does: `curation.labelstudio` and the task's `encode_input` + `render`), lets the
simulated annotator answer the pending tasks through the HTTP API (as the demo does), and
reads the annotations back as `sync-labels` does (`export_annotations` + `to_events`,
latest label per request id). The annotator answers per request id, so the labels equal
the in-process ones; only the wall time differs.

One project per run, policy and seed (`bench-<scenario>-<policy>-s<seed>-<run id>`), so
runs never read each other's annotations. Importing skips request ids already in the
project, and annotated tasks are not pending, so calling again with the same ids adds
nothing and returns the same labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np

from curation.labelstudio import LabelStudioAdapter, LabelStudioError, LSTask
from retrain.digits.task import TASK

MAX_LISTED = 20  # missing request ids spelled out in an error; the rest are counted


class MissingLabels(RuntimeError):
    """Some asked request ids have no usable annotation in the Label Studio project."""


@dataclass(frozen=True)
class LabelStudioSource:
    """Where the workers send labels: picklable, the token kept out of repr."""

    url: str
    token: str = field(repr=False)
    run_id: str
    timeout_s: float = 30.0
    retries: int = 3

    def adapter(self) -> LabelStudioAdapter:
        return LabelStudioAdapter(self.url, self.token, self.timeout_s, self.retries)


def project_title(scenario: str, policy: str, seed: int, run_id: str) -> str:
    """One Label Studio project per benchmark run, policy and seed.

    >>> project_title("tiny", "loop-uncertainty@5", 0, "20250101120000")
    'bench-tiny-loop-uncertainty@5-s0-20250101120000'
    """
    return f"bench-{scenario}-{policy}-s{seed}-{run_id}"


class LabelStudioLabeler:
    """A `flows.bench_replay.Labeler` that labels through Label Studio (see the module doc).

    `adapter` is a `LabelStudioAdapter` (or anything with its methods); `annotator` a
    `SimulatedAnnotator` that knows the truth of every request id it is asked about.
    """

    def __init__(self, adapter, annotator, title: str, task=TASK) -> None:
        self.adapter, self.annotator, self.title, self.task = adapter, annotator, title, task
        self._project: int | None = None

    @property
    def project_id(self) -> int:
        if self._project is None:
            self._project = self.adapter.ensure_project(self.title, self.task.labeling_config)
        return self._project

    def __call__(self, ids: list[str], x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        if not (len(ids) == len(x) == len(probs)):
            raise ValueError(
                f"{len(ids)} request ids, {len(x)} images and {len(probs)} probability rows: "
                "pass one image and one probability vector per request id"
            )
        if not ids:
            return np.zeros(0, dtype=np.int64)
        classes = self.task.classes
        tasks = [
            LSTask(
                request_id=r,
                image=self.task.render(self.task.encode_input(xi)),
                pred_label=classes[int(np.argmax(p))],
                score=float(np.max(p)),
                model_version="champion",
                reason="bench",
            )
            for r, xi, p in zip(ids, x, probs, strict=True)
        ]
        project = self.project_id
        self.adapter.import_tasks(project, tasks)
        self._answer(project)
        return self._labels(project, ids)

    def _answer(self, project: int) -> None:
        try:
            self.annotator.label_pending(self.adapter, project)
        except LabelStudioError as exc:
            # two workers making the annotator's Label Studio user at once: one is refused
            # (400, e-mail taken); the user exists now, and pending tasks are still pending
            if exc.status != 400:
                raise
            self.annotator.label_pending(self.adapter, project)

    def _labels(self, project: int, ids: Sequence[str]) -> np.ndarray:
        from flows.sync_labels import to_events  # imports prefect: only when labeling via LS

        annotations = self.adapter.export_annotations(project)
        events, rejected = to_events(annotations, self.task.classes, set(ids))
        latest = {}
        for e in sorted(events, key=lambda e: (e.ts, e.ls_annotation_id)):
            latest[e.request_id] = e.label  # the contract: the latest label event wins
        missing = [r for r in ids if r not in latest]
        if missing:
            listed = ", ".join(repr(r) for r in missing[:MAX_LISTED])
            more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
            why = ", ".join(f"{k} {v}" for k, v in rejected.items() if v) or "none"
            raise MissingLabels(
                f"{len(missing)} of {len(ids)} request ids have no label in Label Studio project "
                f"{project} ({self.title!r}): {listed}{more}; rejected annotations: {why}. "
                "The simulated annotator answers only request ids it knows the truth of: "
                "check that the bench world's annotator is the one passed here"
            )
        index = {c: k for k, c in enumerate(self.task.classes)}
        return np.array([index[latest[r]] for r in ids], dtype=np.int64)


@contextmanager
def open_labeler(source: LabelStudioSource, world, policy: str) -> Iterator[LabelStudioLabeler]:
    """The labeler of one (world, policy) replay, its connection closed afterwards."""
    title = project_title(world.scenario.name, policy, world.seed, source.run_id)
    with source.adapter() as adapter:
        yield LabelStudioLabeler(adapter, world.annotator, title)


def _reachable(url: str, token: str, timeout_s: float) -> bool:
    """True if the server answers and takes the token; False if nothing answers at `url`."""
    try:
        with LabelStudioAdapter(url, token, timeout=timeout_s, retries=0) as adapter:
            adapter.check()
    except LabelStudioError as exc:
        if exc.status is None:
            return False
        raise
    return True


@contextmanager
def labelstudio_session(
    cfg, run_id: str, say: Callable[[str], object] = print
) -> Iterator[LabelStudioSource]:
    """Label Studio for a benchmark run: the `[labelstudio]` server of `cfg` with the token
    the Runtime would use (LOOPWRIGHT_LABELSTUDIO_TOKEN, else `scripts/labelstudio.sh`'s
    token file). A local server that does not answer is started with the project's script,
    as `loopwright demo` does, and stopped afterwards; a server already up is left running."""
    from flows import services
    from flows.runtime import local_labelstudio_token

    ls = cfg.labelstudio
    token = ls.token.reveal() or local_labelstudio_token()
    env: dict[str, str] | None = None
    if not token or not _reachable(ls.url, token, ls.timeout_s):
        if urlparse(ls.url).hostname not in services.LOCAL_HOSTS:
            raise RuntimeError(
                f"Label Studio at {ls.url} does not answer (or no token is set) and is not on "
                "this machine: start it, or set [labelstudio] url to a local one"
            )
        say(f"starting Label Studio at {ls.url} (scripts/labelstudio.sh start) …")
        started, token, env = services.start_labelstudio(ls.url)
        if not started:
            env = None  # it was running after all (ours): not ours to stop
    try:
        yield LabelStudioSource(ls.url, token, run_id, ls.timeout_s, ls.retries)
    finally:
        if env is not None:
            services.stop(services.Services(ls.url, "", started=["labelstudio"], env=env))
