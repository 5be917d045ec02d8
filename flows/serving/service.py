"""The serving logic without HTTP: validate a whole batch, route each instance, predict,
hand the rows to the log, queue the shadow; and feedback into the label log.

Why apart from `app.py`: the route functions stay a few lines each, and this logic is what
the unit tests exercise (a malformed batch logs nothing because every instance is checked
before the first is predicted).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from flows.serving.models import ServedModels
from flows.serving.schemas import problem
from flows.serving.settings import ServingConfig
from flows.serving.shadow import ShadowJob, ShadowScorer
from flows.serving.sink import Scored, open_sink
from flows.serving.stats import Metrics, StatsRing
from retrain.label_shift import reweight
from retrain.task import Task
from storage.home import DataHome
from storage.routing import Routing, in_canary

RECENT_IDS = 100_000  # ids served lately, for feedback before (async) rows reach the disk


class BadRequest(ValueError):
    """A request the server refuses (4xx); `problems` name each field and its fix."""

    def __init__(self, problems: list[dict], status: int = 422) -> None:
        super().__init__(problems[0]["msg"] if problems else "bad request")
        self.problems, self.status = problems, status


class Unavailable(RuntimeError):
    """The server cannot answer now (no champion, a model that fails to load or predict, the
    log that cannot be written): 503 with the reason."""


@dataclass(frozen=True)
class Parsed:
    request_ids: list[str]
    routing_keys: list[str]
    attrs: list[dict[str, str]]
    x: np.ndarray  # model inputs decoded from the logged bytes (what score-batch predicts on)
    features: np.ndarray
    inputs: list[bytes]


class Service:
    def __init__(self, task: Task, home: DataHome, serving: ServingConfig, threads: int = 1):
        if task.parse_input is None:
            raise ValueError(
                f"task {task.name!r} has no parse_input: give the Task a parse_input (its JSON "
                "input form) to serve it over HTTP (see retrain/digits/serving_input.py)"
            )
        self.task, self.home, self.cfg = task, home, serving
        self.models = ServedModels(home, task, threads)
        self.sink = open_sink(home, task.classes, serving)
        self.stats = StatsRing(serving.stats_samples)
        self.metrics = Metrics()
        self.shadow = ShadowScorer(
            self.models.predictor, self._submit_shadow, serving.shadow_queue, self._shadow_scored
        )
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._recent_lock = threading.Lock()

    # ----------------------------------------------------------------- validation
    def parse(self, instances: Sequence) -> Parsed:
        """Every instance checked before anything is predicted or logged."""
        problems: list[dict] = []
        seen: dict[str, int] = {}
        arrays = []
        for i, inst in enumerate(instances):
            first = seen.setdefault(inst.request_id, i)
            if first != i:
                problems.append(
                    problem(
                        ("body", "instances", i, "request_id"),
                        f"= {inst.request_id!r} repeats instances[{first}].request_id: give "
                        "each instance its own request id",
                    )
                )
            try:
                arrays.append(np.asarray(self.task.parse_input(inst.input), dtype=np.float32))
            except (ValueError, TypeError) as exc:
                problems.append(problem(("body", "instances", i, "input"), str(exc)))
        if problems:
            raise BadRequest(problems)
        try:
            inputs = [self.task.encode_input(a) for a in arrays]
            x = self.task.decode_inputs(inputs)
            features = np.asarray(self.task.features(x), dtype=np.float32)
        except ValueError as exc:  # a task's parse_input let through what it cannot store
            raise BadRequest([problem(("body", "instances"), f"input: {exc}")]) from None
        return Parsed(
            request_ids=[inst.request_id for inst in instances],
            routing_keys=[inst.routing_key or inst.request_id for inst in instances],
            attrs=[dict(inst.attrs or {}) for inst in instances],
            x=x,
            features=features,
            inputs=inputs,
        )

    # ------------------------------------------------------------------- predicting
    def routing(self) -> Routing:
        try:
            routing = self.models.routing()
        except Exception as exc:
            raise Unavailable(f"cannot read the routing: {exc}") from None
        if routing.champion is None:
            raise Unavailable(
                "no champion model to serve: train and promote one first (loopwright seed, "
                "then loopwright retrain --force; see loopwright status)"
            )
        self.metrics.canary_weight.set(routing.canary_weight if routing.canary else 0.0)
        return routing

    def predict(self, parsed: Parsed, routing: Routing) -> tuple[list[dict], list[Future]]:
        """Predictions in request order, and the log futures of their rows."""
        n = len(parsed.request_ids)
        roles = [
            "canary"
            if routing.canary is not None and in_canary(key, routing.canary_weight)
            else "champion"
            for key in parsed.routing_keys
        ]
        now = datetime.now(UTC)
        ts = [now] * n
        out: list[dict | None] = [None] * n
        futures = []
        for role, version in (("champion", routing.champion), ("canary", routing.canary)):
            idx = [i for i, r in enumerate(roles) if r == role]
            if not idx or version is None:
                continue
            try:
                probs = np.asarray(self.models.predictor(version)(parsed.x[idx]))
                probs = reweight(probs, routing.weights_for(version))  # label shift
            except Exception as exc:
                raise PredictFailed(version, role, exc) from None
            preds = probs.argmax(axis=1)
            classes = self.task.classes
            for k, i in enumerate(idx):
                out[i] = {
                    "request_id": parsed.request_ids[i],
                    "pred": classes[int(preds[k])],
                    "probs": probs[k].tolist(),
                    "model_version": version,
                    "role": role,
                }
            scored = Scored(
                request_ids=[parsed.request_ids[i] for i in idx],
                model_version=version,
                role=role,
                features=parsed.features[idx],
                probs=probs,
                inputs=[parsed.inputs[i] for i in idx],
                attrs=[parsed.attrs[i] for i in idx],
                ts=[ts[i] for i in idx],
            )
            futures.append(self.sink.submit(scored))
            self.metrics.predictions.labels(role, version).inc(len(idx))
        if routing.shadow is not None and routing.shadow not in (routing.champion,):
            job = ShadowJob(
                routing.shadow,
                parsed.request_ids,
                parsed.x,
                parsed.features,
                parsed.inputs,
                parsed.attrs,
                ts,
            )
            if not self.shadow.offer(job):
                self.metrics.shadow_dropped.inc(n)
        return out, futures  # type: ignore[return-value]

    def served(self, predictions: list[dict], started: float, ok: bool = True) -> None:
        """Record a request's outcome per version (stats, ids for feedback)."""
        latency_ms = (time.perf_counter() - started) * 1000.0
        now = time.time()
        versions = {(p["model_version"], p["role"]) for p in predictions}
        for version, role in versions:
            self.stats.add(now, version, role, latency_ms, ok)
        if ok:
            with self._recent_lock:
                for p in predictions:
                    self._recent[p["request_id"]] = None
                while len(self._recent) > RECENT_IDS:
                    self._recent.popitem(last=False)

    def failed(self, version: str, role: str, started: float) -> None:
        self.stats.add(time.time(), version, role, (time.perf_counter() - started) * 1e3, False)

    # ------------------------------------------------------------------- shadow
    def _submit_shadow(self, scored: Scored) -> None:
        future = self.sink.submit(scored)
        future.add_done_callback(
            lambda f: f.exception() and self.metrics.log_errors.labels("shadow").inc(len(scored))
        )

    def _shadow_scored(self, version: str, n: int) -> None:
        self.metrics.predictions.labels("shadow", version).inc(n)

    # ------------------------------------------------------------------- feedback
    def feedback(self, request_id: str, label: str, annotator: str | None) -> dict:
        """A label event with source `feedback`; 422 for a label that is no class, 404 for a
        request id never served (not among the recent ones, not in the prediction log)."""
        from storage.label_log import LabelEvent, LabelLog
        from storage.queries import Queries

        if label not in self.task.classes:
            raise BadRequest(
                [
                    problem(
                        ("body", "label"),
                        f"= {label!r} is not a class of task {self.task.name!r}: use one of "
                        f"{list(self.task.classes)}",
                    )
                ]
            )
        with self._recent_lock:
            known = request_id in self._recent
        if not known:
            known = bool(Queries(self.home).known_request_ids([request_id]))
        if not known:
            raise BadRequest(
                [
                    problem(
                        ("body", "request_id"),
                        f"= {request_id!r} was never served (not in the prediction log): send "
                        "feedback for the request_id of a /v1/predict answer",
                    )
                ],
                status=404,
            )
        event = LabelEvent(request_id, label, "feedback", annotator or "feedback")
        LabelLog(self.home).append([event], classes=self.task.classes)
        self.metrics.feedback.inc()
        return {"request_id": request_id, "label": label, "source": "feedback", "logged": 1}

    def close(self) -> None:
        self.shadow.close()
        self.sink.close()


class PredictFailed(RuntimeError):
    """A model raised while predicting: a 5xx counted against its version."""

    def __init__(self, version: str, role: str, cause: BaseException) -> None:
        super().__init__(f"model {version} ({role}) failed to predict: {cause}")
        self.version, self.role = version, role
