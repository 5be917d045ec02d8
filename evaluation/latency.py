"""Inference latency and throughput of a `predict_proba` callable.

Why on the card: a retrained model that is more accurate but twice as slow is a decision
for a person, so the card shows it next to accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from retrain.task import PredictProba


def measure_latency(
    predict_proba: PredictProba,
    x: np.ndarray,
    *,
    batch_size: int = 1,
    repeats: int = 50,
    warmup: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """``{"p50_ms", "p99_ms", "rows_per_s"}``: per-call latency and batch throughput.

    The latency is measured on `repeats` calls of `batch_size` rows (1 by default: what a
    single request waits), cycling through `x`, after `warmup` untimed calls (lazy init,
    caches). The throughput calls `predict_proba` on all of `x` at once, three times, and
    keeps the fastest run (the least disturbed by the rest of the machine).

    `clock` is injectable so tests can assert exact numbers; leave the default otherwise.
    """
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError("x is empty: pass at least one input row to time")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: time at least one row per call")
    if repeats < 1:
        raise ValueError(f"repeats = {repeats}: time at least one call (50 is the default)")
    if warmup < 0:
        raise ValueError(f"warmup = {warmup}: use 0 or more untimed calls")
    n = x.shape[0]
    size = min(batch_size, n)
    starts = max(n - size + 1, 1)

    def batch(i: int) -> np.ndarray:
        s = (i * size) % starts
        return x[s : s + size]

    for i in range(warmup):
        predict_proba(batch(i))
    times = np.empty(repeats)
    for i in range(repeats):
        b = batch(warmup + i)
        t0 = clock()
        predict_proba(b)
        times[i] = clock() - t0
    best = float("inf")
    for _ in range(3):
        t0 = clock()
        predict_proba(x)
        best = min(best, clock() - t0)
    return {
        "p50_ms": float(np.percentile(times, 50) * 1000),
        "p99_ms": float(np.percentile(times, 99) * 1000),
        "rows_per_s": float(n / best) if best > 0 else float("inf"),
    }
