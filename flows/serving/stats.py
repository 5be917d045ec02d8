"""What `/v1/stats` reports and `/metrics` exports: per-version request counts, errors and
latency, from a bounded ring of recent samples, and the Prometheus collectors of one app.

Why a ring: the rollout's analysis asks "since the step started, how did each arm do?";
the last `stats_samples` (ts, version, role, latency, ok) samples answer that in memory,
with a bound (50,000 by default, ~5 MB) whatever the traffic. A step longer than the ring
covers reads the newest samples only; `/v1/stats` says from when (`oldest`).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime

import numpy as np

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class StatsRing:
    """`add(...)` per served (request, version); `summary(since)` -> the /v1/stats body."""

    def __init__(self, max_samples: int = 50_000, started: float | None = None) -> None:
        self.max_samples = max_samples
        self.started = started if started is not None else datetime.now(UTC).timestamp()
        self._samples: deque[tuple[float, str, str, float, bool]] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def add(self, ts: float, version: str, role: str, latency_ms: float, ok: bool) -> None:
        self._samples.append((ts, version, role, latency_ms, ok))  # deque.append is atomic

    def summary(self, since: float | None = None) -> dict:
        """{"started", "oldest", "versions": {v: {role, requests, errors, latency_ms{p50,p99}}}}.

        >>> ring = StatsRing(started=0.0)
        >>> for ms in (1.0, 2.0, 3.0, 100.0):
        ...     ring.add(10.0, "v0001", "champion", ms, True)
        >>> ring.add(11.0, "v0002", "canary", 5.0, False)
        >>> s = ring.summary()
        >>> s["versions"]["v0001"]["requests"], s["versions"]["v0001"]["latency_ms"]["p50"]
        (4, 2.5)
        >>> s["versions"]["v0002"]["errors"], ring.summary(since=10.5)["versions"].keys()
        (1, dict_keys(['v0002']))
        """
        with self._lock:
            samples = list(self._samples)
        if since is not None:
            samples = [s for s in samples if s[0] >= since]
        per: dict[str, dict] = {}
        latencies: dict[str, list[float]] = {}
        for _ts, version, role, latency, ok in samples:
            entry = per.setdefault(version, {"role": role, "requests": 0, "errors": 0})
            entry["role"] = role  # the newest role a version served in
            entry["requests"] += 1
            entry["errors"] += 0 if ok else 1
            if ok:
                latencies.setdefault(version, []).append(latency)
        for version, entry in per.items():
            lat = np.asarray(latencies.get(version, []), dtype=np.float64)
            entry["latency_ms"] = {
                "p50": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
                "p99": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
            }
        return {
            "started": iso(self.started),
            "oldest": iso(samples[0][0]) if samples else None,
            "max_samples": self.max_samples,
            "versions": per,
        }


class Metrics:
    """The app's Prometheus collectors, in a registry of its own (two apps in one process,
    as in tests, never share or clash)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loopwright_http_requests",
            "HTTP requests by path and status",
            ["path", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "loopwright_http_request_duration_seconds",
            "request latency by path",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "loopwright_predictions",
            "predictions served (and shadow-scored) by role and version",
            ["role", "model_version"],
            registry=r,
        )
        self.log_errors = Counter(
            "loopwright_prediction_log_errors",
            "predictions whose log write failed",
            ["role"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            "loopwright_shadow_dropped", "shadow instances dropped (queue full)", registry=r
        )
        self.feedback = Counter("loopwright_feedback", "feedback labels accepted", registry=r)
        self.canary_weight = Gauge(
            "loopwright_canary_weight", "share of traffic routed to the canary", registry=r
        )

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
