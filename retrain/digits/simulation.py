"""The digits task's simulation (`TASK.simulation`): scenario files, the stream, people.

Why here: the demo and the benchmark only know `retrain.simulation.Simulation`; this module
is where digits traffic (`Stream` over `split_digits`), its held-out set and the simulated
annotator are put together, once, for both drivers.

Seeds: `world(scenario, seed, ...)` replays the scenario with stream seed `seed` (absolute:
a benchmark's k-th seed is `scenario.seed + k`, computed by the caller), so the file's own
seed is just the default a driver starts from.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np

from retrain.digits import transforms
from retrain.digits.codec import CLASSES, encode_input
from retrain.digits.data import split_digits
from retrain.digits.scenario import Scenario, find_scenario, load_scenario
from retrain.digits.simulator import Stream
from retrain.simulation import BatchWorld, SeedExamples, WorldBatch

#: extra tilt of the 2nd and 3rd copies of the held-out set (see `heldout_set`)
HELDOUT_JITTER_DEG = (0.0, 2.0, -2.0)


def heldout_set(stream: Stream, i: int) -> tuple[np.ndarray, np.ndarray]:
    """>= 1000 held-out images drifted like batch i: the holdout base images (never
    streamed, never labeled, never trained on) in 3 copies, each drawn with its own rng
    for noise/inversion, copies 2 and 3 also tilted by +2 and -2 degrees so that
    deterministic drifts (rotation, thickness) do not give three identical copies.
    Returns (N, 1, 8, 8) float32 inputs and (N,) int64 class indices."""
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
    return x, np.concatenate(ys).astype(np.int64)


def seed_examples(seed_rows: int, holdout_rows: int) -> SeedExamples:
    """The clean digits the first champion learns from (the split's seed set).

    The split's own seed stays fixed: the task's clean-digit expectation uses the same
    holdout, which must never hold images the first champion trained on."""
    split = split_digits(seed_rows=seed_rows, holdout_rows=holdout_rows)
    return SeedExamples(
        request_ids=tuple(f"seed-{i:04d}" for i in range(len(split.seed_y))),
        inputs=tuple(encode_input(img) for img in split.seed_x),
        labels=tuple(CLASSES[int(y)] for y in split.seed_y),
        attrs=tuple({"phase": "seed"} for _ in range(len(split.seed_y))),
    )


@lru_cache(maxsize=8)
def _world(scenario: Scenario, seed: int, seed_rows: int, holdout_rows: int) -> BatchWorld:
    seeded = dataclasses.replace(scenario, seed=seed)
    split = split_digits(seed_rows=seed_rows, holdout_rows=holdout_rows)
    stream = Stream(seeded, split=split, run_id=f"{scenario.name}-s{seed}")
    batches = []
    for b in stream.batches():
        labels = b.labels.astype(np.int64)
        labels.setflags(write=False)
        batches.append(
            WorldBatch(
                request_ids=tuple(b.request_ids),
                inputs=tuple(encode_input(img) for img in b.images),
                attrs=tuple(b.attrs),
                labels=labels,
                phase=b.phase,
            )
        )
    return BatchWorld(
        seeded,
        seed,
        CLASSES,
        batches,
        seed_examples(seed_rows, holdout_rows),
        lambda i: heldout_set(stream, i),
    )


class DigitsSimulation:
    """`retrain.simulation.Simulation` for digits: scenarios are `scenarios/*.toml`."""

    def find_scenario(self, name_or_path: str | Path) -> Path:
        return find_scenario(name_or_path)

    def load_scenario(self, path: str | Path) -> Scenario:
        return load_scenario(path)

    def world(self, scenario: Scenario, seed: int, seed_rows: int, holdout_rows: int) -> BatchWorld:
        """Stream seed `seed` (absolute), `[retrain] seed_rows`, `[demo] holdout_rows`:
        the split takes the holdout first, so the seed rows depend on holdout_rows too."""
        if isinstance(seed, bool) or int(seed) < 0:
            raise ValueError(f"seed = {seed!r}: a stream seed is a whole number >= 0")
        if not isinstance(scenario, Scenario):
            raise ValueError(
                f"scenario is a {type(scenario).__name__}: load it with "
                "DigitsSimulation().load_scenario(path)"
            )
        return _world(scenario, int(seed), int(seed_rows), int(holdout_rows))


__all__ = ["HELDOUT_JITTER_DEG", "DigitsSimulation", "heldout_set", "seed_examples"]
