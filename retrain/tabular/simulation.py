"""The tabular task's simulation (`TASK.simulation`): Agrawal traffic, its truth, people.

Seeds: batch i draws from rng `[seed, 1, i]`, its held-out set from `[seed, 2, i]`, the
seed examples from `[seed, 3]`, so a world is a pure function of (scenario, seed, rows) and
the k-th benchmark seed is just another absolute seed.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np

from retrain.simulation import BatchWorld, SeedExamples, WorldBatch, find_in
from retrain.tabular.scenario import TabularScenario, load_scenario
from retrain.tabular.schema import decode_inputs, encode_input
from retrain.tabular.streams import draw_rows

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"
CLASSES = ("class_0", "class_1")
HELDOUT_MIN_ROWS = 1000


def zipband(zipcode: int) -> str:
    """Slice of a zipcode: three bands of three towns ("0-2", "3-5", "6-8")."""
    low = (int(zipcode) // 3) * 3
    return f"{low}-{low + 2}"


def row_attrs(rec: dict, base: dict[str, str]) -> dict[str, str]:
    return {**base, "elevel": str(rec["elevel"]), "zipband": zipband(rec["zipcode"])}


def _batch(scenario: TabularScenario, i: int) -> WorldBatch:
    params = scenario.params_at(i)
    rng = np.random.default_rng([scenario.seed, 1, i])
    records, labels = draw_rows(params, scenario.batch_size, rng)
    labels.setflags(write=False)
    prefix = f"{scenario.name}-s{scenario.seed}"
    base = {**params.attrs, "phase": str(params.phase), "batch": str(i)}
    return WorldBatch(
        request_ids=tuple(f"{prefix}-b{i:04d}-r{j:04d}" for j in range(len(records))),
        inputs=tuple(encode_input(r) for r in records),
        attrs=tuple(row_attrs(r, base) for r in records),
        labels=labels,
        phase=params.phase,
    )


def heldout_set(scenario: TabularScenario, i: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` fresh applicants drawn like batch i (its mean concept mix), never streamed."""
    params = scenario.params_at(i)
    mix = [float(np.mean(params.p_new))] * rows
    records, y = draw_rows(params, rows, np.random.default_rng([scenario.seed, 2, i]), mix)
    return decode_inputs([encode_input(r) for r in records]), y


def seed_examples(scenario: TabularScenario, seed_rows: int) -> SeedExamples:
    """The first champion's rows: drawn like batch 0 (the world before any drift)."""
    params = scenario.params_at(0)
    mix = [float(np.mean(params.p_new))] * seed_rows
    records, y = draw_rows(params, seed_rows, np.random.default_rng([scenario.seed, 3]), mix)
    return SeedExamples(
        request_ids=tuple(f"seed-{j:04d}" for j in range(seed_rows)),
        inputs=tuple(encode_input(r) for r in records),
        labels=tuple(CLASSES[int(c)] for c in y),
        attrs=tuple(row_attrs(r, {"phase": "seed"}) for r in records),
    )


@lru_cache(maxsize=8)
def _world(scenario: TabularScenario, seed: int, seed_rows: int, holdout_rows: int) -> BatchWorld:
    seeded = dataclasses.replace(scenario, seed=seed)
    batches = [_batch(seeded, i) for i in range(seeded.n_batches)]
    rows = max(HELDOUT_MIN_ROWS, int(holdout_rows))
    return BatchWorld(
        seeded,
        seed,
        CLASSES,
        batches,
        seed_examples(seeded, int(seed_rows)),
        lambda i: heldout_set(seeded, i, rows),
    )


class TabularSimulation:
    """`retrain.simulation.Simulation` for the tabular task: scenarios are `scenarios/tabular-*.toml`."""

    def find_scenario(self, name_or_path: str | Path) -> Path:
        return find_in(SCENARIOS_DIR, name_or_path, "a bundled scenario")

    def load_scenario(self, path: str | Path) -> TabularScenario:
        return load_scenario(path)

    def world(
        self, scenario: TabularScenario, seed: int, seed_rows: int, holdout_rows: int
    ) -> BatchWorld:
        if not isinstance(scenario, TabularScenario):
            raise ValueError(
                f"scenario is a {type(scenario).__name__}: load it with "
                "TabularSimulation().load_scenario(path)"
            )
        if isinstance(seed, bool) or int(seed) < 0:
            raise ValueError(f"seed = {seed!r}: a stream seed is a whole number >= 0")
        if int(seed_rows) < 1:
            raise ValueError(f"seed_rows = {seed_rows}: the first champion needs rows, e.g. 600")
        return _world(scenario, int(seed), int(seed_rows), int(holdout_rows))
