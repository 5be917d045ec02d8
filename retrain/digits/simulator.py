"""The production stream: the embedded default's stand-in for real traffic.

Why a pure function of (scenario, seed, batch index): a demo, a test and a rerun after a
crash must see the same images, so batch i is generated from its own seeded rng and never
from state left by batch i - 1. The loop's own code never imports this module; only the
digits simulation (`retrain/digits/simulation.py`, which the demo and the benchmark drive)
and tests do (the loop sees what the stream produced through the prediction log).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from retrain.digits import transforms
from retrain.digits.data import DigitsSplit, split_digits
from retrain.digits.scenario import PhaseParams, Scenario

# Separate rng streams per purpose, so that drawing holdout noise never shifts batch images.
_BATCH_STREAM = 1
_HOLDOUT_STREAM = 2


#: the attr naming a row's source image; `[retrain] split_group` in loopwright.toml
SCAN_ATTR = "scan"


@dataclass(frozen=True)
class SimBatch:
    """One production batch with its ground truth (which the loop only learns via labels)."""

    index: int
    phase: int  # 0-based index of the scenario's [[phase]]
    images: np.ndarray  # (N, 8, 8) float32 in 0..1
    labels: np.ndarray  # (N,) int64 class indices
    request_ids: list[str]
    attrs: list[dict[str, str]]
    params: PhaseParams

    def __len__(self) -> int:
        return len(self.labels)

    def truth(self) -> dict[str, str]:
        """request_id -> true class name, what the simulated annotator answers from."""
        return {rid: str(int(y)) for rid, y in zip(self.request_ids, self.labels, strict=True)}


class Stream:
    """Batches of a scenario, sampled from the split's pool and drifted per the phase.

    >>> from retrain.digits.scenario import parse_scenario
    >>> sc = parse_scenario({"name": "t", "seed": 1, "batch_size": 4, "phase": [{"batches": 2}]})
    >>> b = Stream(sc).batch(1)
    >>> b.images.shape, b.request_ids[0], b.attrs[0]
    ((4, 8, 8), 't-b0001-r0000', {'phase': '0', 'batch': '1', 'scan': 'scan-116'})
    """

    def __init__(
        self, scenario: Scenario, split: DigitsSplit | None = None, run_id: str = ""
    ) -> None:
        self.scenario = scenario
        self._split = split
        self.run_id = run_id
        self.prefix = run_id or scenario.name

    @cached_property
    def split(self) -> DigitsSplit:
        # loaded on first use, not in __init__: building a Stream stays free
        return self._split if self._split is not None else split_digits()

    @cached_property
    def _pool_by_class(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.split.pool_y == c) for c in range(10)]

    @property
    def n_batches(self) -> int:
        return self.scenario.n_batches

    def _rng(self, stream: int, i: int) -> np.random.Generator:
        return np.random.default_rng([self.scenario.seed, stream, i])

    def batch(self, i: int) -> SimBatch:
        """Batch i: base images drawn by the phase's class prior, then drifted."""
        params = self.scenario.params_at(i)
        rng = self._rng(_BATCH_STREAM, i)
        n = self.scenario.batch_size
        labels = rng.choice(10, size=n, p=np.asarray(params.class_prior))
        idx = np.empty(n, dtype=np.int64)
        for c in np.unique(labels):
            members = self._pool_by_class[c]
            if len(members) == 0:
                raise ValueError(
                    f"class {c} has weight in scenario {self.scenario.name!r} but no pool images: "
                    "use a split with every class in the pool"
                )
            where = labels == c
            idx[where] = members[rng.integers(0, len(members), size=int(where.sum()))]
        images = transforms.apply(self.split.pool_x[idx], params, rng)
        base_attrs = {"phase": str(params.phase), "batch": str(i), **params.attrs}
        return SimBatch(
            index=i,
            phase=params.phase,
            images=images,
            labels=self.split.pool_y[idx].astype(np.int64),
            request_ids=[f"{self.prefix}-b{i:04d}-r{j:04d}" for j in range(n)],
            # `scan`: which source image a row is a copy of (its "document id"); the dataset
            # split groups by it, so a scan is never both trained on and tested on
            attrs=[{**base_attrs, SCAN_ATTR: f"scan-{k}"} for k in idx.tolist()],
            params=params,
        )

    def batches(self) -> Iterator[SimBatch]:
        """All batches in order (a generator: each is built when asked for)."""
        return (self.batch(i) for i in range(self.n_batches))

    def holdout(self, i: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The holdout images drifted like batch i, for an honest "true accuracy" at batch i.

        Seeded by (scenario seed, i) only, so every caller (champion, challenger, report)
        measures on the same images. The class prior is not applied: this measures how well
        the model reads drifted digits; label shift is visible in the batches themselves.
        `n` takes the first n holdout rows (a fixed subset), for a cheaper measurement.
        """
        params = self.scenario.params_at(i)
        x, y = self.split.holdout_x, self.split.holdout_y
        if n is not None:
            if n < 1:
                raise ValueError(f"holdout n = {n}: ask for at least 1 row (or None for all)")
            x, y = x[:n], y[:n]
        images = transforms.apply(x, params, self._rng(_HOLDOUT_STREAM, i))
        return images, y.astype(np.int64)
