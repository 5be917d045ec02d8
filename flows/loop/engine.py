"""The loop's engine: every stage of the loop, composed once, over three ports.

Why one engine: the Prefect flows (the deployments, the demo) and the benchmark used to
hold two copies of the loop; now both call `Loop`'s stages, so what the benchmark measures
is what production runs. The ports are what differs between them: the store (a data home),
the labeler (a Label Studio adapter, or the in-process one), the traffic (the tables handed
to `score`). Nothing here imports Prefect: a flow passes `steps`, which runs each sub-step
as a Prefect task, so the composition itself exists once, here.

No decision reads the wall clock or an unseeded generator: curation draws with the seed its
caller gives, fits with `[retrain] seed` on `[retrain] threads` threads, predictions carry
the incoming table's timestamps. The caches hold immutable things only: one predictor per
registry version, one drift reference per champion version, decoded inputs by their bytes
(`flows.loop.inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from flows.loop.inputs import DecodedInputs
from retrain.task import Task, load_task
from storage.home import DataHome
from storage.queries import Queries
from storage.registry import Registry

if TYPE_CHECKING:
    from flows.config import Config
    from retrain.simulation import SeedExamples

#: how a sub-step runs: steps(name, fn, *args, **kw) -> fn's result
Steps = Callable[..., Any]


def call(name: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """The default `steps`: run the sub-step in place."""
    return fn(*args, **kw)


class Loop:
    """The loop over one data home: its config, task, registry and queries, and its stages.

    `labelstudio`: a zero-argument factory of a labeler adapter (a context manager with the
    `curation.labelstudio.LabelStudioAdapter` API); default: the real adapter from
    `[labelstudio]` (an annotating one when an `annotator` is given).
    `annotator`: who answers in `label()` (a `SimulatedAnnotator`); None in production,
    where people answer in Label Studio and `label()` returns 0.
    `artifacts=False`: no report card HTML/JSON, no latency timing, no drift report files
    (what the benchmark skips for speed); every decision stays the same.
    `steps`: how a sub-step runs (`call` by default; the flows wrap each in a Prefect task).
    `cache_parts=True`: the logs' parts are read once and kept decoded in memory
    (`storage.part_cache`; the answers are the same, the memory grows with the logs): for
    short loops over small logs (the benchmark), not for a production data home.
    """

    def __init__(
        self,
        cfg: Config,
        home: DataHome | str | Path,
        labelstudio: Callable[[], Any] | None = None,
        annotator: Any = None,
        artifacts: bool = True,
        steps: Steps | None = None,
        cache_parts: bool = False,
    ) -> None:
        self.cfg = cfg
        # a path: made if missing, dead writers' leftovers cleaned (as `open_loop` opens it)
        if not isinstance(home, DataHome):
            s = cfg.storage
            home = DataHome(Path(home).resolve(), s.logs_url, s.endpoint_url).ensure()
        self.home = home
        self.annotator = annotator
        self.artifacts = bool(artifacts)
        self.steps: Steps = steps or call
        self.cache_parts = bool(cache_parts)
        self._labelstudio = labelstudio
        self._predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self._drift_refs: dict[tuple, Any] = {}
        #: the report card the last `retrain` of this loop built (the flows show it)
        self.last_card: dict | None = None

    def __repr__(self) -> str:
        return f"Loop(home={str(self.home.root)!r}, task={self.cfg.task.plugin!r})"

    # -- what every stage reads ---------------------------------------------------------

    @cached_property
    def task(self) -> Task:
        return load_task(self.cfg.task.plugin, self.cfg.task.classes)

    @cached_property
    def decoded(self) -> DecodedInputs:
        """The inputs this loop decoded, by their bytes (`flows.loop.inputs`)."""
        return DecodedInputs(self.task.decode_inputs)

    def decode_inputs(self, inputs: Sequence[bytes]) -> np.ndarray:
        """`task.decode_inputs(inputs)`, each distinct input decoded once per loop: every stage
        that needs model inputs decodes through here."""
        return self.decoded.decode(inputs)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.home)

    @cached_property
    def queries(self) -> Queries:
        return Queries(self.home, self.cfg.storage, cache_parts=self.cache_parts)

    @property
    def threads(self) -> int:
        """Torch threads of every fit and every scoring (`[retrain] threads`)."""
        return self.cfg.retrain.threads

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
        if not known:  # a new batch: nothing to tell apart (and one query fewer)
            return known
        both = known & self.queries.seed_ids()
        if not both:
            return known
        logged = self.queries.prediction_frame(sorted(both), columns=["request_id"])
        return (known - both) | set(logged.column("request_id").to_pylist())

    def predictor(self, version: str) -> Callable[[np.ndarray], np.ndarray]:
        """predict_proba of a registry version, loaded once with its checksum verified (a
        version's weights never change, so the loaded model is kept)."""
        found = self._predictors.get(version)
        if found is not None:
            return found
        from retrain.model import predictor

        state, _meta = self.registry.load(version)
        predict = predictor(self.task, state, self.threads)
        self._predictors[version] = predict
        return predict

    def served_predictor(self, version: str) -> Callable[[np.ndarray], np.ndarray]:
        """The posteriors `version` is served with now: its predict_proba with the label-shift
        correction of the registry applied (`retrain.label_shift.reweight`); what a user of
        the serving endpoint gets, and what the benchmark measures."""
        from retrain.label_shift import reweight
        from storage.routing import read_routing

        predict = self.predictor(version)
        weights = read_routing(self.home).weights_for(version)
        if weights is None:
            return predict
        return lambda x: reweight(predict(x), weights)

    def cached_drift_reference(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The drift reference of a champion (its training rows' features and its outputs on
        them): both are fixed once the champion is, so it is computed once per key."""
        if key not in self._drift_refs:
            self._drift_refs[key] = make()
        return self._drift_refs[key]

    def labelstudio(self):
        """A labeler adapter (context manager): the factory given, else the real adapter
        from `[labelstudio]`, with the token from the environment (`flows.loop.labeler`)."""
        if self._labelstudio is not None:
            return self._labelstudio()
        from flows.loop.labeler import labelstudio_adapter

        return labelstudio_adapter(self.cfg, annotating=self.annotator is not None)

    # -- the stages (each returns its flow's result; contracts in docs/contracts.md) ----

    def score(self, table: pa.Table) -> dict:
        """Predict with the serving aliases and append the batch to the prediction log."""
        from flows.loop.score import score_table

        return self.steps("score", score_table, self, table)

    def drift_check(self) -> dict:
        """Compare recent traffic with the reference window; the verdict is `last_drift`.
        With `[label_shift] enabled`, the champion's class prior is re-estimated too and its
        served correction updated (`flows.loop.adapt`): the verdict's `label_shift`."""
        from flows.loop.drift import check

        verdict = self.steps("drift-statistics", check, self)
        if self.cfg.label_shift.enabled:
            from flows.loop.adapt import adapt

            verdict = {**verdict, "label_shift": self.steps("label-shift", adapt, self)}
        return verdict

    def curate(self, budget: int | None = None, seed: int | None = None) -> dict:
        """Pick what people should label and send it to the labeler."""
        from flows.loop.curate import curate

        return curate(self, budget, seed)

    def label(self) -> int:
        """People at work: the annotator (if any) answers the labeler's pending tasks."""
        if self.annotator is None:
            return 0
        from flows.loop.curate import labeling_project

        with self.labelstudio() as adapter:
            project_id = labeling_project(self, adapter)
            return int(self.annotator.label_pending(adapter, project_id))

    def sync(self) -> dict:
        """Pull finished annotations into the label log (raises `AnnotationProblems`)."""
        from flows.loop.sync import sync

        return sync(self)

    def retrain(self, force: bool = False, reason: str = "") -> dict:
        """Triggers; if one fires: dataset, fit, report card, gate, promote or keep."""
        from flows.loop.retrain import retrain

        return retrain(self, force, reason)

    def feedback(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Users' answers on served requests: label events with source `feedback`, at each
        request's logged time (`flows.loop.feedback`; behind a server: POST /v1/feedback)."""
        from flows.loop.feedback import log_feedback

        ids = [r for r, _ in pairs]
        logged = self.queries.prediction_frame(ids, columns=["request_id", "ts"])
        ts = dict(zip(*(logged.column(c).to_pylist() for c in ("request_id", "ts")), strict=True))
        return log_feedback(self, pairs, ts)

    def rollout(self, retrain_result: dict) -> dict:
        """The round's rollout stage (`flows.loop.online.stage`): in process there is no
        server, so errors and latency are not judged (no serving stats)."""
        from flows.loop.online import stage

        return stage(self, retrain_result, None)

    def write_seed(self, seed: SeedExamples) -> int:
        """Write a simulation's seed examples (labeled, source "seed") at their logical
        time; features as `score` computes them. Returns rows written."""
        from storage.seed import write_seed

        inputs = list(seed.inputs)
        x = self.decode_inputs(inputs)
        return write_seed(
            self.home,
            request_ids=list(seed.request_ids),
            features=self.task.features(x),
            inputs=inputs,
            labels=list(seed.labels),
            attrs=[dict(a) for a in seed.attrs],
            classes=self.task.classes,
            ts=seed.ts,
        )
