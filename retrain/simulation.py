"""A task's simulation: the stand-in for production traffic and people, task by task.

Why a task owns it: the demo and the benchmark drive the same loop; what differs between a
digits model and a user's model is what traffic looks like, how it drifts and what the
truth is. A task plugin that ships a `Simulation` (`Task.simulation`) can be demoed and
benchmarked without a line of task code in the engine or the drivers.

Why logical time: both drivers must log identical rows (parity), so nothing here reads the
wall clock. Batch i is stamped `ORIGIN + 60 s * i + 1 us * row`, the seed one day earlier,
so seed rows are always older than traffic (what `[gate] recent_rows` relies on).

Nothing here imports pyarrow or a task at import time: `retrain.task` imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from retrain.digits.annotator import SimulatedAnnotator

#: logical time of batch 0, row 0 (both drivers, every run)
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
#: logical time between two batches
BATCH_SPACING = timedelta(seconds=60)
#: logical time between two rows of a batch (keeps `ts, request_id` order = row order)
ROW_SPACING = timedelta(microseconds=1)
#: when the seed examples were "labeled": before any traffic
SEED_TS = ORIGIN - timedelta(days=1)


def batch_ts(i: int, n: int) -> list[datetime]:
    """Logical timestamps of the n rows of batch i.

    >>> [t.isoformat() for t in batch_ts(2, 2)]
    ['2026-01-01T00:02:00+00:00', '2026-01-01T00:02:00.000001+00:00']
    """
    if i < 0 or n < 0:
        raise ValueError(f"batch_ts(i={i}, n={n}): batch index and row count must be >= 0")
    start = ORIGIN + BATCH_SPACING * i
    return [start + ROW_SPACING * j for j in range(n)]


def batch_table(
    i: int,
    request_ids: Sequence[str],
    inputs: Sequence[bytes],
    attrs: Sequence[Mapping[str, str]],
) -> pa.Table:
    """Batch i as `score-batch` reads it: request_id, input (the task's encoded bytes),
    attrs map<string, string>, ts timestamp[us, UTC] (logical, `batch_ts`)."""
    import pyarrow as pa

    n = len(request_ids)
    if len(inputs) != n or len(attrs) != n:
        raise ValueError(
            f"batch {i}: {n} request_ids, {len(inputs)} inputs, {len(attrs)} attrs: "
            "pass one of each per row"
        )
    return pa.table(
        {
            "request_id": pa.array(list(request_ids), pa.string()),
            "input": pa.array(list(inputs), pa.binary()),
            "attrs": pa.array([list(a.items()) for a in attrs], pa.map_(pa.string(), pa.string())),
            "ts": pa.array(batch_ts(i, n), pa.timestamp("us", tz="UTC")),
        }
    )


@dataclass(frozen=True)
class SeedExamples:
    """The first champion's clean labeled rows (never through production): what the
    engine's `write_seed` stores. `inputs` are the task's encoded bytes, `labels` class names."""

    request_ids: tuple[str, ...]
    inputs: tuple[bytes, ...]
    labels: tuple[str, ...]
    attrs: tuple[dict[str, str], ...]
    ts: datetime = SEED_TS

    def __post_init__(self) -> None:
        n = len(self.request_ids)
        for name in ("inputs", "labels", "attrs"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"SeedExamples.{name} has {len(getattr(self, name))} rows for {n} "
                    "request_ids: give one per example"
                )
        if self.ts.utcoffset() is None:
            raise ValueError(f"SeedExamples.ts = {self.ts!r}: pass an aware (UTC) datetime")

    def __len__(self) -> int:
        return len(self.request_ids)


class ScenarioLike(Protocol):
    """What a driver reads of a scenario; the rest of its keys are the task's own."""

    name: str
    seed: int
    batch_size: int

    @property
    def n_batches(self) -> int: ...

    @property
    def onset_batch(self) -> int | None: ...


class SimWorld(Protocol):
    """One replay of a scenario with one seed: traffic, its truth, a held-out set, people.

    Pure of (scenario, seed, seed_rows, holdout_rows): two worlds built from the same
    arguments, in any process, give identical tables, truth and answers. Request ids start
    with f"{scenario.name}-s{seed}" (no run id, no wall clock)."""

    scenario: Any  # the task's scenario, with .seed == seed
    seed: int
    n_batches: int
    batch_size: int
    onset_batch: int | None
    truth: Mapping[str, str]  # request_id -> true class name, every batch
    seed_examples: SeedExamples

    def table(self, i: int) -> pa.Table: ...  # batch i, see `batch_table`

    def labels(self, i: int) -> np.ndarray: ...  # (N,) int64 true class indices of batch i

    def phase(self, i: int) -> int: ...  # 0-based phase of batch i

    def heldout(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(N, *input_shape) float32 model inputs drifted like batch i, (N,) int64 classes;
        N >= 1000, never streamed, never labeled, never trained on."""
        ...

    def annotator(self, error_rate: float, name: str) -> SimulatedAnnotator: ...


class Simulation(Protocol):
    """A task's simulation (`Task.simulation()` returns one)."""

    def find_scenario(self, name_or_path: str | Path) -> Path: ...

    def load_scenario(self, path: str | Path) -> Any: ...  # a ScenarioLike

    def world(self, scenario: Any, seed: int, seed_rows: int, holdout_rows: int) -> SimWorld:
        """The world of `scenario` replayed with absolute stream seed `seed`; cached per
        process (it is pure); building it trains nothing."""
        ...


@dataclass(frozen=True)
class WorldBatch:
    """One simulated batch with its truth, as a world keeps it (inputs already encoded)."""

    request_ids: tuple[str, ...]
    inputs: tuple[bytes, ...]
    attrs: tuple[dict[str, str], ...]
    labels: np.ndarray  # (N,) int64 class indices, read-only
    phase: int


class BatchWorld:
    """A `SimWorld` made of precomputed batches: what every task's world shares.

    The task supplies its batches (built eagerly: `truth` must hold every batch from the
    start), its seed examples and `heldout_fn(i)`; held-out sets are built on first use and
    kept (read-only), since every policy of a benchmark seed measures on them.
    """

    def __init__(
        self,
        scenario: Any,
        seed: int,
        classes: Sequence[str],
        batches: Sequence[WorldBatch],
        seed_examples: SeedExamples,
        heldout_fn: Any,  # Callable[[int], tuple[np.ndarray, np.ndarray]]
    ) -> None:
        from types import MappingProxyType

        self.scenario = scenario
        self.seed = int(seed)
        self.classes = tuple(classes)
        self.n_batches = len(batches)
        self.batch_size = int(scenario.batch_size)
        self.onset_batch = scenario.onset_batch
        self.seed_examples = seed_examples
        self._batches = tuple(batches)
        self._tables = tuple(
            batch_table(i, b.request_ids, b.inputs, b.attrs) for i, b in enumerate(batches)
        )
        truth: dict[str, str] = {}
        for b in batches:
            truth.update(
                {r: self.classes[int(y)] for r, y in zip(b.request_ids, b.labels, strict=True)}
            )
        self.truth: Mapping[str, str] = MappingProxyType(truth)
        self._heldout_fn = heldout_fn
        self._heldout: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scenario={self.scenario.name!r}, seed={self.seed}, "
            f"batches={self.n_batches}x{self.batch_size})"
        )

    def _check(self, i: int) -> int:
        if not 0 <= i < self.n_batches:
            raise IndexError(
                f"batch {i} is outside scenario {self.scenario.name!r} "
                f"(batches 0..{self.n_batches - 1})"
            )
        return i

    def table(self, i: int) -> pa.Table:
        return self._tables[self._check(i)]

    def labels(self, i: int) -> np.ndarray:
        return self._batches[self._check(i)].labels

    def phase(self, i: int) -> int:
        return self._batches[self._check(i)].phase

    def heldout(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self._check(i)
        if i not in self._heldout:
            x, y = self._heldout_fn(i)
            x.setflags(write=False)
            y.setflags(write=False)
            self._heldout[i] = (x, y)
        return self._heldout[i]

    def annotator(self, error_rate: float, name: str) -> SimulatedAnnotator:
        """People: answers from the truth with `error_rate` mistakes, seeded by the world seed
        (pure of seed and request id, so both drivers get the same labels)."""
        from retrain.digits.annotator import SimulatedAnnotator

        return SimulatedAnnotator(
            self.truth, self.classes, error_rate=error_rate, seed=self.seed, name=name
        )


def find_in(
    folder: Path,
    name_or_path: str | Path,
    where: str | None = None,
    error: type[ValueError] = ValueError,
) -> Path:
    """A scenario by path, or by name from `folder` ("wine-shift" -> folder/wine-shift.toml);
    `where` names the folder in the error (default: "a scenario of <folder>")."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = folder / f"{path.name.removesuffix('.toml')}.toml"
    if bundled.is_file():
        return bundled
    known = sorted(p.stem for p in folder.glob("*.toml"))
    raise error(
        f"scenario {str(name_or_path)!r} is neither a file nor {where or f'a scenario of {folder}'}: "
        f"give a path to a .toml file or one of {known}"
    )


#: tasks a scenario names by a short `task = "..."` (else it gives a plugin, `module:OBJECT`)
BUILTIN_TASKS = {"digits": "retrain.digits.task:TASK", "tabular": "retrain.tabular.task:TASK"}
#: the plugin environment override: every stage's config (any process a driver starts) reads it
TASK_PLUGIN_ENV = "LOOPWRIGHT_TASK__PLUGIN"


def task_plugin(name: object, source: str = "scenario") -> str:
    """The plugin spec of a scenario's `task`: a built-in name or a `module:OBJECT` spec.

    >>> task_plugin("tabular"), task_plugin("tests.wine_task:TASK")
    ('retrain.tabular.task:TASK', 'tests.wine_task:TASK')
    """
    if isinstance(name, str) and name in BUILTIN_TASKS:
        return BUILTIN_TASKS[name]
    if isinstance(name, str) and ":" in name and all(name.partition(":")[::2]):
        return name
    raise ValueError(
        f"{source}: task = {name!r} is neither a built-in task ({', '.join(BUILTIN_TASKS)}) nor "
        "a plugin 'package.module:OBJECT': set task to one of them"
    )


def scenario_task(path: str | Path) -> str | None:
    """The plugin spec a scenario file names with `task = ...`, or None when it names none
    (it then runs on the configured `[task] plugin`; digits by default). Reads only that key:
    the task's own simulation checks the rest."""
    import tomllib

    try:
        with Path(path).open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None  # the task's own loader says what is wrong with the file
    if "task" not in data:
        return None
    return task_plugin(data["task"], str(path))


def scenario_file(name_or_path: str | Path) -> Path | None:
    """A scenario's file: the path, the path from the repository, or a bundled name."""
    repo = Path(__file__).resolve().parents[1]
    p = Path(name_or_path)
    stem = p.name.removesuffix(".toml")
    for candidate in (p, repo / p, repo / "scenarios" / f"{stem}.toml"):
        if candidate.is_file():
            return candidate
    return None


def adopt_scenario_task(
    plugin: str,
    classes: Sequence[str],
    scenario: str | Path,
    env: dict[str, str] | None = None,
) -> str | None:
    """Make the task a scenario names (`task = "tabular"`) the one every stage runs, when it
    differs from the configured `plugin`; returns a note saying so (None: nothing changed).

    Why the scenario wins instead of an error: a scenario's keys are its task's (a tabular
    file means nothing to digits), so running it on another task could only fail, and
    `loopwright demo --scenario scenarios/tabular-switch.toml` should just run. Why the
    environment: every stage opens its own config (Prefect flow runs, benchmark worker
    processes); `LOOPWRIGHT_TASK__PLUGIN` reaches them all. A scenario naming no task runs
    on `[task] plugin` (digits by default)."""
    import os

    env = os.environ if env is None else env
    path = scenario_file(scenario)
    wanted = scenario_task(path) if path is not None else None
    if wanted is None or wanted == plugin:
        return None
    if classes:
        raise ValueError(
            f"scenario {str(scenario)!r} runs task {wanted!r}, but [task] classes = "
            f"{list(classes)} watches a model by its classes only: remove task.classes"
        )
    env[TASK_PLUGIN_ENV] = wanted
    return f"scenario {path.name} names its task: running {wanted} (not the configured task.plugin = {plugin})"


__all__ = [
    "BATCH_SPACING",
    "adopt_scenario_task",
    "scenario_file",
    "BUILTIN_TASKS",
    "TASK_PLUGIN_ENV",
    "scenario_task",
    "task_plugin",
    "ORIGIN",
    "ROW_SPACING",
    "SEED_TS",
    "ScenarioLike",
    "SeedExamples",
    "SimWorld",
    "Simulation",
    "WorldBatch",
    "BatchWorld",
    "batch_table",
    "batch_ts",
    "find_in",
]
