"""The HTTP endpoint (DESIGN.md "Serving and online testing", a contract): `POST /v1/predict`,
`POST /v1/feedback`, `GET /healthz`, `GET /metrics`, `GET /v1/stats`, OpenAPI at `/docs`,
and the rollout's admin routes (`flows/serving/rollout_api.py`).

Why `create_app(cfg, home)` and nothing at import: the CLI, the tests and the benchmark
each build an app over their own data home; building one starts the log writer and the
shadow thread, and the app's shutdown (uvicorn's SIGTERM, a TestClient leaving its `with`)
writes what is pending and stops them.
"""

import asyncio
import contextlib
import time
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from flows.serving import rollout_api
from flows.serving.schemas import (
    FeedbackRequest,
    PredictResponse,
    error_body,
    problem,
    problems_from_pydantic,
    request_models,
)
from flows.serving.service import BadRequest, PredictFailed, Service, Unavailable
from storage.home import DataHome

PATHS = ("/v1/predict", "/v1/feedback", "/v1/stats", "/healthz", "/metrics")


class _Count:
    """ASGI middleware: requests by path and status, latency histogram (cheaper than
    Starlette's BaseHTTPMiddleware, which runs each request in an extra task)."""

    def __init__(self, app, metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        path = path if path in PATHS or path.startswith("/v1/rollout") else "other"
        started, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def _json(body: object, status: int = 200) -> Response:
    import orjson

    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(cfg, home: DataHome, task=None) -> FastAPI:
    """The app serving `home`'s registry with `cfg`'s task and `[serving]` section."""
    from retrain.task import load_task

    task = task or load_task(cfg.task.plugin, cfg.task.classes)
    service = Service(task, home, cfg.serving, threads=cfg.retrain.threads)
    with contextlib.suppress(Exception):  # no champion yet, or a broken one: /healthz says
        service.models.routing()  # load the serving models now, not on the first request
    limit = cfg.serving.max_instances
    _Instance, PredictRequest = request_models(task.input_schema, limit)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.close()  # pending rows written, threads stopped

    app = FastAPI(
        title="loopwright serving",
        version="1",
        description=f"Task {task.name!r}: classes {list(task.classes)}. Durability "
        f"{cfg.serving.durability!r}. Every prediction answered is in the prediction log.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.home = home  # what the rollout routes read

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        feedback = request.url.path == "/v1/feedback"
        return _json(error_body(problems_from_pydantic(exc.errors(), limit, feedback)), 422)

    @app.post(
        "/v1/predict",
        responses={200: {"model": PredictResponse}, 422: {"description": "names the field"}},
    )
    async def predict(body: PredictRequest) -> Response:  # type: ignore[valid-type]  (a real class: no postponed annotations in this module)
        """Predict each instance with its arm (champion, or canary by its routing key); answer
        once the rows are logged (`durability = "ack"`) or queued (`"async"`)."""
        started = time.perf_counter()
        try:
            parsed = service.parse(body.instances)
            routing = service.routing()
            predictions, futures = service.predict(parsed, routing)
        except BadRequest as exc:
            return _json(error_body(exc.problems), exc.status)
        except PredictFailed as exc:
            service.failed(exc.version, exc.role, started)
            return _json({"error": str(exc)}, 503)
        except Unavailable as exc:
            return _json({"error": str(exc)}, 503)
        try:
            for f in futures:
                if not f.done():
                    await asyncio.wrap_future(f)
                f.result()
        except Exception as exc:
            for p in predictions:
                service.metrics.log_errors.labels(p["role"]).inc()
            versions = {(p["model_version"], p["role"]) for p in predictions}
            for version, role in versions:
                service.failed(version, role, started)
            return _json(
                {
                    "error": f"the predictions could not be logged ({exc}); nothing was "
                    "acknowledged: retry the request"
                },
                503,
            )
        service.served(predictions, started)
        return _json({"predictions": predictions})

    @app.post("/v1/feedback", status_code=200)
    def feedback(body: FeedbackRequest) -> Response:
        """A person's label for a served request: a label event with source `feedback`."""
        try:
            return _json(service.feedback(body.request_id, body.label, body.annotator))
        except BadRequest as exc:
            return _json(error_body(exc.problems), exc.status)

    @app.get("/healthz")
    def healthz() -> Response:
        """200 when a champion can serve; 503 (with the reason) when not."""
        try:
            r = service.routing()
        except Unavailable as exc:
            return _json({"status": "unavailable", "error": str(exc)}, 503)
        return _json(
            {
                "status": "ok",
                "task": task.name,
                "champion": r.champion,
                "canary": r.canary,
                "canary_weight": r.canary_weight if r.canary else 0.0,
                "shadow": r.shadow,
                "revision": r.revision,
                "durability": cfg.serving.durability,
            }
        )

    @app.get("/v1/stats")
    def stats(
        since: str | None = Query(None, description="ISO-8601 time, e.g. 2026-12-01T10:00:00Z"),
    ) -> Response:
        """Requests, errors and p50/p99 latency per model version since `since`."""
        start = None
        if since is not None:
            try:
                parsed = datetime.fromisoformat(since)
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                return _json(
                    error_body(
                        [
                            problem(
                                ("query", "since"),
                                f"= {since!r} is not an ISO-8601 time with a zone: write it "
                                "like 2026-12-01T10:00:00Z (in a URL, + as %2B)",
                            )
                        ]
                    ),
                    422,
                )
            start = parsed.timestamp()
        return _json(service.stats.summary(start))

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text: requests by status, latency, predictions per role and version."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(service.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(rollout_api.router)  # the rollout's admin routes (/v1/rollout...)
    app.add_middleware(_Count, metrics=service.metrics)  # outermost: counts every response
    return app
