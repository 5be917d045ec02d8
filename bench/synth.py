"""Synthetic data for the speed benchmarks: seeded, built with NumPy, no model needed.

The features look like the digits task's (64 pixels in 0..1 at 17 grey levels, a constant
border, a few columns with <= 5 values) plus a block of continuous columns, so that both of
Evidently's numeric methods (normed Wasserstein, Jensen-Shannon) and both of the streaming
paths in `curation.drift` (exact value counts, fine histogram) are exercised. The current
window shifts some columns by varied amounts: some drift, most do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from storage.schemas import PREDICTION_SCHEMA

N_FEATURES = 64
N_CLASSES = 10
CLASSES = tuple(str(c) for c in range(N_CLASSES))
N_CONTINUOUS = 16  # the last 16 columns are continuous float32
CONSTANT = (0, 7, 56, 63)  # always-0 corner pixels
FEW_VALUES = (1, 8, 15)  # at most 3 grey levels


@dataclass(frozen=True)
class Window:
    features: np.ndarray  # (N, 64) float32
    pred: np.ndarray  # (N,) int64 class index
    confidence: np.ndarray  # (N,) float32


def _column(rng: np.random.Generator, j: int, n: int, shift: float) -> np.ndarray:
    if j in CONSTANT:
        return np.zeros(n, np.float32)
    if j in FEW_VALUES:
        p1 = min(0.2 + shift, 0.9)
        return rng.choice(np.array([0, 1, 2], np.float32) / 16, n, p=[1 - p1 - 0.05, p1, 0.05])
    if j >= N_FEATURES - N_CONTINUOUS:
        return (rng.standard_normal(n, dtype=np.float32) * (1 + (j % 3)) + shift).astype(np.float32)
    a, b = 1.0 + (j % 5), 1.0 + (j % 7)
    x = np.clip(rng.beta(a, b, n) + shift * 0.3, 0, 1)
    return (np.round(x * 16) / 16).astype(np.float32)


def shifts(drifted: bool) -> np.ndarray:
    """Per-column shift of the current window: 0 for the reference; for the current window a
    spread of sizes (every 4th column), so that scores fall on both sides of the 0.1 line."""
    s = np.zeros(N_FEATURES)
    if drifted:
        s[::4] = np.linspace(0.02, 0.6, len(s[::4]))
        s[1] = 0.3  # a few-values column drifts too
    return s


def window(n: int, seed: int, drifted: bool) -> Window:
    rng = np.random.default_rng(seed)
    sh = shifts(drifted)
    x = np.empty((n, N_FEATURES), np.float32)
    for j in range(N_FEATURES):
        x[:, j] = _column(rng, j, n, float(sh[j]))
    prior = np.linspace(1.0, 2.0 if drifted else 1.0, N_CLASSES)
    pred = rng.choice(N_CLASSES, n, p=prior / prior.sum()).astype(np.int64)
    conf = rng.beta(8.0 if not drifted else 5.0, 1.5, n).astype(np.float32)
    return Window(x, pred, conf)


def prediction_table(
    n: int, seed: int, start: datetime, drifted: bool, id_offset: int = 0, model_version="v0001"
) -> pa.Table:
    """`n` prediction-log rows in the contract schema (no input bytes), one microsecond apart."""
    w = window(n, seed, drifted)
    rng = np.random.default_rng(seed + 1)
    logits = rng.standard_normal((n, N_CLASSES)).astype(np.float32)
    logits[np.arange(n), w.pred] += 3.0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    ent = -(p * np.log(p)).sum(axis=1)
    ids, ts = ids_and_ts(n, id_offset, start)

    def vectors(m: np.ndarray) -> pa.ListArray:
        k = m.shape[1]
        off = pa.array(np.arange(n + 1, dtype=np.int32) * k, pa.int32())
        return pa.ListArray.from_arrays(off, pa.array(m.reshape(-1), pa.float32()))

    cols = {
        "request_id": ids,
        "ts": ts,
        "model_version": pa.array([model_version] * n, pa.string()),
        "role": pa.array(["champion"] * n, pa.string()),
        "features": vectors(w.features),
        "input": pa.nulls(n, pa.binary()),
        "input_uri": pa.nulls(n, pa.string()),
        "probs": vectors(p.astype(np.float32)),
        "pred": pa.array(np.array(CLASSES)[p.argmax(axis=1)], pa.string()),
        "confidence": pa.array(top2[:, 0], pa.float32()),
        "margin": pa.array(top2[:, 0] - top2[:, 1], pa.float32()),
        "entropy": pa.array(ent, pa.float32()),
        "attrs": pa.nulls(n, PREDICTION_SCHEMA.field("attrs").type),
    }
    return pa.Table.from_arrays(list(cols.values()), schema=PREDICTION_SCHEMA)


def ids_and_ts(n: int, id_offset: int, start: datetime, offset_us: int = 0):
    """Request ids `r000000042`... and timestamps one microsecond apart (ts order = id order)."""
    ids = pa.array([f"r{i:010d}" for i in range(id_offset, id_offset + n)], pa.string())
    t0 = np.datetime64(start.replace(tzinfo=None), "us").astype(np.int64) + offset_us
    ts = pa.array(t0 + np.arange(n, dtype=np.int64), pa.int64()).cast(
        PREDICTION_SCHEMA.field("ts").type
    )
    return ids, ts


def relabel(table: pa.Table, id_offset: int, start: datetime, offset_us: int = 0) -> pa.Table:
    """The same rows under fresh request ids and timestamps."""
    ids, ts = ids_and_ts(table.num_rows, id_offset, start, offset_us)
    return table.set_column(0, "request_id", ids).set_column(1, "ts", ts)


def day(i: int = 0) -> datetime:
    return datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i)
