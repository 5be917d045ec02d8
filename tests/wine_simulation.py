"""The wine task's small simulation: sklearn's 178 wines replayed with a feature shift.

Why it exists: it proves the demo's and the benchmark's loop need nothing of digits. A
scenario (TOML, `tests/scenarios/wine-shift.toml`) is phases of batches; a phase may shift
features by a number of standard deviations (`shift = { flavanoids = -1.5 }`), add noise
(`noise`, in standard deviations) and change the class mix (`class_prior`, 3 weights).

The wines are split once (fixed permutation) into held-out, seed and pool rows, disjoint:
batches draw pool rows with replacement, each copy jittered, so no two rows are identical.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from retrain import scenario_parse as sp
from retrain.simulation import BatchWorld, SeedExamples, WorldBatch, find_in
from tests.wine_task import CLASSES, SCALE, encode_input

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
TOP_KEYS = ("name", "seed", "batch_size", "phase")
PHASE_KEYS = ("batches", "shift", "noise", "class_prior")
JITTER = 0.05  # std units of noise on every streamed copy of a pool wine
HELDOUT_MIN_ROWS = 1000
MIN_POOL_ROWS = 30


@lru_cache(maxsize=1)
def _wines() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn.datasets import load_wine

    data = load_wine()
    return data.data.astype(np.float64), data.target.astype(np.int64), tuple(data.feature_names)


def feature_names() -> tuple[str, ...]:
    return _wines()[2]


@dataclass(frozen=True)
class WinePhase:
    batches: int
    shift: tuple[tuple[str, float], ...] = ()  # feature -> std units
    noise: float = 0.0  # std units
    class_prior: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)

    def data_params(self) -> tuple:
        return (self.shift, self.noise, self.class_prior)


@dataclass(frozen=True)
class WineScenario(sp.PhasedScenario):
    phases: tuple[WinePhase, ...]

    def phase_at(self, i: int) -> tuple[int, WinePhase]:
        index, _ = self.locate(i)
        return index, self.phases[index]

    @property
    def onset_batch(self) -> int | None:
        return sp.first_change(self.n_batches, lambda i: self.phase_at(i)[1].data_params())


def _number(where: str, key: str, v: Any) -> float:
    return sp.number(where, key, v, unit=" (standard deviations)")


def _phase(where: str, data: Any) -> WinePhase:
    data = sp.phase_table(where, data, PHASE_KEYS, ValueError)
    shift = data.get("shift", {})
    if not isinstance(shift, dict):
        raise ValueError(f"{where}: shift = {shift!r}: write shift = {{ flavanoids = -1.5 }}")
    for key in shift:
        if key not in feature_names():
            raise ValueError(
                f"{where}: shift.{key} is not a wine feature: use one of {list(feature_names())}"
            )
    noise = _number(where, "noise", data.get("noise", 0.0))
    if noise < 0:
        raise ValueError(f"{where}: noise = {noise} must be >= 0 (standard deviations)")
    prior = data.get("class_prior", [1, 1, 1])
    if (
        not isinstance(prior, list)
        or len(prior) != len(CLASSES)
        or any(_number(where, "class_prior", w) < 0 for w in prior)
        or sum(prior) <= 0
    ):
        raise ValueError(f"{where}: class_prior = {prior!r}: give 3 weights >= 0, not all 0")
    return WinePhase(
        batches=sp.whole(where, "batches", data.get("batches"), 1),
        shift=tuple(sorted((k, _number(where, f"shift.{k}", v)) for k, v in shift.items())),
        noise=noise,
        class_prior=tuple(float(w) / sum(prior) for w in prior),
    )


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> WineScenario:
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown top-level key {unknown[0]!r} (known: {TOP_KEYS})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{source}: name = {name!r} must be a non-empty string")
    phases = data.get("phase")
    if not isinstance(phases, list) or not phases:
        raise ValueError(f"{source}: no phases: add a [[phase]] section with batches = N")
    return WineScenario(
        name=name,
        seed=sp.whole(source, "seed", data.get("seed"), 0),
        batch_size=sp.whole(source, "batch_size", data.get("batch_size"), 1),
        phases=tuple(_phase(f"{source}: phase {i}", p) for i, p in enumerate(phases, 1)),
    )


@lru_cache(maxsize=8)
def wine_split(seed_rows: int, holdout_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(held-out, seed, pool) row indices of load_wine: disjoint, from a fixed permutation."""
    n = len(_wines()[1])
    if seed_rows < 1 or holdout_rows < 1 or n - seed_rows - holdout_rows < MIN_POOL_ROWS:
        raise ValueError(
            f"seed_rows = {seed_rows}, holdout_rows = {holdout_rows} leaves fewer than "
            f"{MIN_POOL_ROWS} of the {n} wines for the stream: set [retrain] seed_rows and "
            "[demo] holdout_rows lower (e.g. 60 and 40), both >= 1"
        )
    order = np.random.default_rng(0).permutation(n)
    return (
        np.sort(order[:holdout_rows]),
        np.sort(order[holdout_rows : holdout_rows + seed_rows]),
        np.sort(order[holdout_rows + seed_rows :]),
    )


def _drift(x: np.ndarray, phase: WinePhase, rng: np.random.Generator, jitter: float) -> np.ndarray:
    std = _wines()[0].std(axis=0)
    out = x + rng.normal(0.0, 1.0, size=x.shape) * std * (jitter + phase.noise)
    names = feature_names()
    for key, by in phase.shift:
        out[:, names.index(key)] += by * std[names.index(key)]
    return out.astype(np.float32)


def _batch(scenario: WineScenario, pool: np.ndarray, i: int) -> WorldBatch:
    x_all, y_all, _ = _wines()
    index, phase = scenario.phase_at(i)
    rng = np.random.default_rng([scenario.seed, 1, i])
    classes = rng.choice(len(CLASSES), size=scenario.batch_size, p=np.asarray(phase.class_prior))
    idx = np.empty(scenario.batch_size, dtype=np.int64)
    for c in np.unique(classes):
        members = pool[y_all[pool] == c]
        where = classes == c
        idx[where] = members[rng.integers(0, len(members), size=int(where.sum()))]
    x = _drift(x_all[idx], phase, rng, JITTER)
    labels = y_all[idx].copy()
    labels.setflags(write=False)
    prefix = f"{scenario.name}-s{scenario.seed}"
    base = {"phase": str(index), "batch": str(i)}
    return WorldBatch(
        request_ids=tuple(f"{prefix}-b{i:04d}-r{j:04d}" for j in range(len(idx))),
        inputs=tuple(encode_input(row) for row in x),
        attrs=tuple({**base, "wine": f"wine-{k}"} for k in idx.tolist()),
        labels=labels,
        phase=index,
    )


def _heldout(scenario: WineScenario, rows: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out wines drifted like batch i, in copies (each its own rng) to >= 1000 rows;
    as model inputs (what decode_inputs gives), float32 (N, 13)."""
    x_all, y_all, _ = _wines()
    _, phase = scenario.phase_at(i)
    copies = math.ceil(HELDOUT_MIN_ROWS / len(rows))
    xs = [
        _drift(x_all[rows], phase, np.random.default_rng([scenario.seed, 2, i, k]), JITTER)
        for k in range(copies)
    ]
    return np.concatenate(xs) / SCALE, np.tile(y_all[rows], copies)


@lru_cache(maxsize=8)
def _world(scenario: WineScenario, seed: int, seed_rows: int, holdout_rows: int) -> BatchWorld:
    seeded = dataclasses.replace(scenario, seed=seed)
    held, seed_idx, pool = wine_split(seed_rows, holdout_rows)
    x_all, y_all, _ = _wines()
    seed_examples = SeedExamples(
        request_ids=tuple(f"seed-{j:04d}" for j in range(len(seed_idx))),
        inputs=tuple(encode_input(x_all[k]) for k in seed_idx),
        labels=tuple(CLASSES[int(y_all[k])] for k in seed_idx),
        attrs=tuple({"phase": "seed", "wine": f"wine-{k}"} for k in seed_idx.tolist()),
    )
    batches = [_batch(seeded, pool, i) for i in range(seeded.n_batches)]
    return BatchWorld(
        seeded, seed, CLASSES, batches, seed_examples, lambda i: _heldout(seeded, held, i)
    )


class WineSimulation:
    """`retrain.simulation.Simulation` for the wine test task."""

    def find_scenario(self, name_or_path: str | Path) -> Path:
        return find_in(SCENARIOS_DIR, name_or_path)

    def load_scenario(self, path: str | Path) -> WineScenario:
        path = Path(path)
        return parse_scenario(sp.read_toml(path, ValueError), source=str(path))

    def world(
        self, scenario: WineScenario, seed: int, seed_rows: int, holdout_rows: int
    ) -> BatchWorld:
        if not isinstance(scenario, WineScenario):
            raise ValueError(f"scenario is a {type(scenario).__name__}: load it with load_scenario")
        if isinstance(seed, bool) or int(seed) < 0:
            raise ValueError(f"seed = {seed!r}: a stream seed is a whole number >= 0")
        return _world(scenario, int(seed), int(seed_rows), int(holdout_rows))
