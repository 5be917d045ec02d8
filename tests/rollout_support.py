"""A data home for rollout tests: a champion and a candidate registered with any weights (no
training), and synthetic traffic each arm served, with labels of a chosen accuracy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import torch

from evaluation.rollout import RolloutRules
from flows.config import Config
from flows.loop.engine import Loop
from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PredictionLog, make_batch
from storage.queue_log import QueueLog

CLASSES = [str(i) for i in range(10)]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def make_loop(root: Path, **rules) -> Loop:
    """A loop over a new home with v0001 champion and v0002 registered; `rules` override
    `[rollout]` (defaults: min_predictions 50, min_labels 20, stats not used)."""
    base = {"min_predictions": 50, "min_labels": 20, "stats_url": "off", **rules}
    cfg = replace(Config(), rollout=RolloutRules(**base))
    loop = Loop(cfg, DataHome(root).ensure())
    reg = loop.registry
    meta = {"task": "digits", "classes": CLASSES, "reference_confidence": 0.9}
    v1 = reg.register({"w": torch.zeros(3)}, meta)
    reg.register({"w": torch.ones(3)}, meta)
    reg.set_alias("champion", v1, reason="first model", expected=None)
    return loop


def serve(
    loop: Loop,
    role: str,
    version: str,
    n: int,
    *,
    start: datetime,
    prefix: str,
    accuracy: float | None = None,
    labeled: int = 0,
    source: str = "feedback",
    confidence: float = 0.9,
    seed: int = 0,
    spacing: timedelta = timedelta(seconds=1),
) -> list[str]:
    """Log `n` predictions of `version` as `role` from `start` (`spacing` apart); label the
    first `labeled` of them (`source` feedback, or audit/uncertainty queue picks labeled in
    Label Studio) so that exactly round(labeled * accuracy) are right."""
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}-{i}" for i in range(n)]
    preds = rng.integers(0, 10, size=n)
    probs = np.full((n, 10), (1 - confidence) / 9, dtype=np.float64)
    probs[np.arange(n), preds] = confidence
    ts = [start + i * spacing for i in range(n)]
    batch = make_batch(
        request_ids=ids, features=rng.random((n, 4)), probs=probs, classes=CLASSES,
        model_version=version, role=role, ts=ts,
    )  # fmt: skip
    PredictionLog(loop.home).append(batch, classes=CLASSES)
    if labeled:
        right = round(labeled * (accuracy if accuracy is not None else 1.0))
        events = []
        for i in range(labeled):
            label = str(preds[i]) if i < right else str((preds[i] + 1) % 10)
            src = "feedback" if source == "feedback" else "labelstudio"
            events.append(LabelEvent(ids[i], label, src, "tester", ts=ts[i] + timedelta(hours=1)))
        if source in ("audit", "uncertainty"):
            QueueLog(loop.home).append(ids[:labeled], source, ts=ts[-1])
        LabelLog(loop.home).append(events, classes=CLASSES)
    return ids


def both_arms(loop: Loop, start: datetime, prefix: str, *, canary_acc: float, champ_acc: float,
              n: int = 100, labeled: int = 40, canary_conf: float = 0.9,
              spacing: timedelta = timedelta(seconds=1)) -> None:  # fmt: skip
    cand = loop.registry.get("canary") or "v0002"
    serve(loop, "canary", cand, n, start=start, prefix=f"{prefix}c", accuracy=canary_acc,
          labeled=labeled, confidence=canary_conf, seed=1, spacing=spacing)  # fmt: skip
    serve(loop, "champion", "v0001", n, start=start, prefix=f"{prefix}h", accuracy=champ_acc,
          labeled=labeled, seed=2, spacing=spacing)  # fmt: skip
