"""What every policy of one benchmark seed shares: the stream, the held-out set, the first champion.

Why shared: policies are compared on the same images, the same truth and the same starting
model, so a difference between them is the policy's and not the draw's. Everything here is
a pure function of (scenario file, seed, settings) and is built once per seed per process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from retrain.digits import transforms
from retrain.digits.annotator import SimulatedAnnotator
from retrain.digits.data import split_digits
from retrain.digits.scenario import Scenario, load_scenario
from retrain.digits.simulator import Stream
from retrain.digits.task import TASK
from retrain.model import load_module, predict_proba
from retrain.training import finetune_epochs, fit
from storage.datasets import split_of

#: extra tilt of the 2nd and 3rd copies of the held-out set (see `heldout_set`)
HELDOUT_JITTER_DEG = (0.0, 2.0, -2.0)


@dataclass(frozen=True)
class Settings:
    """Knobs of one benchmark run (defaults = the shipped loopwright.toml where it has one)."""

    seed_rows: int = 600
    holdout_rows: int = 500
    error_rate: float = 0.02
    scratch_epochs: int = 40
    finetune_epochs: int = 15
    fit_samples: int = (
        9000  # fine-tune schedule: epochs = clamp(fit_samples / n_train, 1, finetune_epochs)
    )
    batch_size: int = 64
    lr: float = 3e-3
    test_share: float = 0.2
    recent_rows: int = 200  # [retrain] recent_rows: newest labels up-weighted by recent_weight
    recent_weight: float = 1.0  # [retrain] recent_weight (1 = uniform)
    split_group: str = (
        ""  # attr the dataset split groups by ([retrain] split_group); "" = request id
    )
    # triggers ([trigger])
    accuracy_threshold: float = 0.85
    min_labels: int = 20
    window_labels: int = 60
    on_drift: bool = True
    confidence_drop: float = 0.1
    # drift check ([drift])
    reference_rows: int = 600
    window_rows: int = 400
    numeric_threshold: float = 0.1
    categorical_threshold: float = 0.1
    drift_share: float = 0.5
    # curation ([curation]) and gate ([gate])
    strategy: str = "margin"
    audit_share: float = 0.2
    dataset_policy: str = "all"
    gate_tolerance: float = 0.005
    gate_slice_tolerance: float = 0.05
    gate_min_slice_rows: int = 20
    gate_min_eval_rows: int = 50
    gate_recent_rows: int = 0  # newest eval rows that stand for today's traffic (0 = off)
    gate_min_recent_rows: int = 20
    gate_forget_tolerance: float = 0.02
    gate_min_gain_z: float = 0.0
    periodic_every: int = 5
    candidate_batches: int = 10  # curate from the last k batches ([curation] window_rows = 2000)
    recovery_drop: float = 0.05  # [trigger] recovery_drop: see retrain.triggers.recovery_step
    degraded_checks: int = 3  # shuffled-label challengers offered per loop-uncertainty run


def settings_from_config(cfg, **bench: object) -> Settings:
    """The benchmark knobs that loopwright.toml also sets, taken from it ("as configured").

    Why: `loop-uncertainty` is meant to be loopwright as a user runs it; a bench with its own
    copy of the thresholds would silently measure something else once the file changes.
    `bench` holds the knobs only the benchmark has (fit_samples, candidate_batches, ...).
    """
    t, d, c, r, g = cfg.trigger, cfg.drift, cfg.curation, cfg.retrain, cfg.gate
    return Settings(
        seed_rows=r.seed_rows,
        holdout_rows=cfg.demo.holdout_rows,
        error_rate=cfg.labeling.error_rate,
        scratch_epochs=r.max_epochs,
        finetune_epochs=r.finetune_epochs,
        batch_size=r.batch_size,
        lr=r.learning_rate,
        split_group=r.split_group,
        recent_rows=r.recent_rows,
        recent_weight=r.recent_weight,
        accuracy_threshold=t.accuracy_threshold,
        min_labels=t.min_labels,
        window_labels=t.window_labels,
        on_drift=t.on_drift,
        confidence_drop=t.confidence_drop,
        recovery_drop=t.recovery_drop,
        reference_rows=d.reference_rows,
        window_rows=d.window_rows,
        numeric_threshold=d.numeric_threshold,
        categorical_threshold=d.categorical_threshold,
        drift_share=d.drift_share,
        strategy=c.strategy,
        audit_share=c.audit_share,
        dataset_policy=r.dataset_policy,
        gate_tolerance=g.tolerance,
        gate_slice_tolerance=g.slice_tolerance,
        gate_min_slice_rows=g.min_slice_rows,
        gate_min_eval_rows=g.min_eval_rows,
        gate_recent_rows=g.recent_rows,
        gate_min_recent_rows=g.min_recent_rows,
        gate_forget_tolerance=g.forget_tolerance,
        gate_min_gain_z=g.min_gain_z,
        **{"fit_samples": r.fit_samples or Settings.fit_samples, **bench},
    )


@dataclass(frozen=True)
class Batch:
    index: int
    phase: int
    x: np.ndarray  # (N, 1, 8, 8) float32
    y: np.ndarray  # (N,) int64 truth
    request_ids: tuple[str, ...]
    attrs: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class World:
    scenario: Scenario
    seed: int
    batches: tuple[Batch, ...]
    heldout: tuple[tuple[np.ndarray, np.ndarray], ...]  # per batch: (x, y), >= 1000 rows
    seed_ids: tuple[str, ...]
    seed_x: np.ndarray
    seed_y: np.ndarray
    champion: dict[str, torch.Tensor]
    reference_confidence: float
    annotator: SimulatedAnnotator

    def label(self, request_ids: list[str]) -> np.ndarray:
        """The simulated annotator's answers (truth with its error rate), as class indices."""
        return np.array([int(self.annotator.answer(r)) for r in request_ids], dtype=np.int64)


def seeded(scenario: Scenario, seed: int) -> Scenario:
    """Seed k of a benchmark replays the scenario with stream seed scenario.seed + k."""
    return dataclasses.replace(scenario, seed=scenario.seed + seed)


def heldout_set(stream: Stream, i: int) -> tuple[np.ndarray, np.ndarray]:
    """>= 1000 held-out images drifted like batch i: the 500 holdout base images (never
    streamed, never labeled, never trained on) in 3 copies, each drawn with its own rng
    for noise/inversion, copies 2 and 3 also tilted by +2 and -2 degrees so that
    deterministic drifts (rotation, thickness) do not give three identical copies."""
    params = stream.scenario.params_at(i)
    base_x, base_y = stream.split.holdout_x, stream.split.holdout_y
    xs, ys = [], []
    for k, jitter in enumerate(HELDOUT_JITTER_DEG):
        if k == 0:
            img, y = stream.holdout(i)
        else:
            rng = np.random.default_rng([stream.scenario.seed, 2, i, k])
            img = transforms.apply(base_x, params, rng)
            img, y = transforms.rotate(img, jitter), base_y.astype(np.int64)
        xs.append(img)
        ys.append(y)
    x = np.concatenate(xs)[:, None, :, :].astype(np.float32)
    return x, np.concatenate(ys)


def fit_epochs(n_train: int, s: Settings) -> int:
    """Fine-tune schedule, as `flows/retrain.py` runs it (`retrain.training.finetune_epochs`)."""
    return finetune_epochs(n_train, s.fit_samples, s.finetune_epochs)


def reference_confidence(state: dict[str, torch.Tensor], x: np.ndarray) -> float:
    """Mean top-class probability on held-out labeled rows: what the confidence trigger
    compares live traffic with (flows/retrain.py stores the same number)."""
    probs = predict_proba(load_module(TASK, state), x)
    return float(probs.max(axis=1).mean())


@lru_cache(maxsize=4)
def build_world(scenario_path: str, seed: int, settings: Settings) -> World:
    scenario = seeded(load_scenario(scenario_path), seed)
    split = split_digits(seed_rows=settings.seed_rows, holdout_rows=settings.holdout_rows)
    stream = Stream(scenario, split=split, run_id=f"{scenario.name}-s{seed}")
    batches, heldout, truth = [], [], {}
    for i in range(stream.n_batches):
        b = stream.batch(i)
        batches.append(
            Batch(
                i,
                b.phase,
                b.images[:, None].astype(np.float32),
                b.labels.astype(np.int64),
                tuple(b.request_ids),
                tuple(b.attrs),
            )
        )
        truth.update(b.truth())
        heldout.append(heldout_set(stream, i))
    seed_ids = tuple(f"seed-{i:04d}" for i in range(len(split.seed_y)))
    seed_x = split.seed_x[:, None].astype(np.float32)
    seed_y = split.seed_y.astype(np.int64)
    # the first champion, as the demo's bootstrap makes it: seed rows, hash split, scratch fit
    train = np.array([split_of(r, settings.test_share) == "train" for r in seed_ids])
    result = fit(
        TASK,
        seed_x[train],
        seed_y[train],
        max_epochs=settings.scratch_epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=seed,
    )
    return World(
        scenario=scenario,
        seed=seed,
        batches=tuple(batches),
        heldout=tuple(heldout),
        seed_ids=seed_ids,
        seed_x=seed_x,
        seed_y=seed_y,
        champion=result.state_dict,
        reference_confidence=reference_confidence(result.state_dict, seed_x[~train]),
        annotator=SimulatedAnnotator(
            truth,
            TASK.classes,
            error_rate=settings.error_rate,
            seed=scenario.seed,
            name="bench-annotator",
        ),
    )
