"""Scenario files (TOML, a contract): a production stream's drift, written without code.

Why strict parsing: a typo such as `rotaton = 30` would otherwise give a silent no-drift
run, and a demo that "shows nothing" for an hour. Every error names the key, the phase
(counted from 1, as a person reads the file) and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain import scenario_parse as sp
from retrain.scenario_parse import is_number

N_CLASSES = 10
SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"  # the bundled scenario files
TOP_KEYS = ("name", "seed", "batch_size", "phase", "task")
PHASE_KEYS = ("batches", "rotation", "noise", "thickness", "invert", "class_prior", "attrs")
RESERVED_ATTRS = ("phase", "batch")  # the simulator stamps these on every row itself
# key -> (low, high, unit): bounds of the drift knobs, inclusive
RANGES: dict[str, tuple[float, float, str]] = {
    "rotation": (-180.0, 180.0, "degrees"),
    "noise": (0.0, 1.0, "std of Gaussian noise on 0..1 pixels"),
    "thickness": (-3.0, 3.0, "pixels of dilation (negative: erosion)"),
    "invert": (0.0, 1.0, "probability an image is inverted"),
}


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the key, the phase and the fix."""


@dataclass(frozen=True)
class Ramp:
    """A value over a phase: constant when start == end, else linear from start to end."""

    start: float
    end: float

    def at(self, k: int, n: int) -> float:
        """Value at batch k (0-based) of an n-batch phase: start at the first, end at the last
        (a one-batch phase takes `end`), so both numbers written in the file are really seen."""
        if self.start == self.end:
            return self.start
        t = 1.0 if n == 1 else k / (n - 1)
        return self.start + (self.end - self.start) * t


@dataclass(frozen=True)
class Phase:
    batches: int
    rotation: Ramp
    noise: Ramp
    thickness: Ramp
    invert: Ramp
    class_prior: tuple[float, ...]  # normalized to sum 1
    attrs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PhaseParams:
    """The drift knobs at one batch. `phase` is the 0-based index of the [[phase]] table."""

    rotation: float
    noise: float
    thickness: float
    invert: float
    class_prior: tuple[float, ...]
    attrs: dict[str, str]
    phase: int

    def data_params(self) -> tuple:
        """What shapes the data (not the slice labels): two batches drift apart iff these differ."""
        return (self.rotation, self.noise, self.thickness, self.invert, self.class_prior)


@dataclass(frozen=True)
class Scenario(sp.PhasedScenario):
    phases: tuple[Phase, ...]

    @property
    def onset_batch(self) -> int | None:
        """First batch whose data params differ from batch 0's (where drift starts); None if never.

        Attrs and the phase index are ignored: relabelling a slice is not drift.
        """
        return sp.first_change(self.n_batches, lambda i: self.params_at(i).data_params())

    def params_at(self, batch_index: int) -> PhaseParams:
        """The drift knobs at batch `batch_index` (0-based), ramps interpolated within the phase."""
        if not 0 <= batch_index < self.n_batches:
            raise IndexError(
                f"batch {batch_index} is outside scenario {self.name!r} "
                f"(batches 0..{self.n_batches - 1}): add phases or ask for an earlier batch"
            )
        index, k = self.locate(batch_index)
        phase = self.phases[index]
        n = phase.batches
        return PhaseParams(
            rotation=phase.rotation.at(k, n),
            noise=phase.noise.at(k, n),
            thickness=phase.thickness.at(k, n),
            invert=phase.invert.at(k, n),
            class_prior=phase.class_prior,
            attrs=dict(phase.attrs),
            phase=index,
        )


def _number(where: str, key: str, v: Any, label: str = "") -> float:
    low, high, unit = RANGES[key]
    label = label or key
    if not is_number(v):
        raise ScenarioError(
            f"{where}: {label} = {v!r} is not a number: give {unit} as a number or {{start, end}}"
        )
    if not low <= v <= high:
        raise ScenarioError(f"{where}: {label} = {v} is outside {low:g}..{high:g} ({unit})")
    return float(v)


def _ramp(where: str, key: str, v: Any) -> Ramp:
    if v is None:
        return Ramp(0.0, 0.0)
    if isinstance(v, dict):
        unknown = sorted(set(v) - {"start", "end"})
        if unknown:
            raise ScenarioError(
                f"{where}: {key} has unknown key {unknown[0]!r}: a ramp is {{start = ..., end = ...}}"
            )
        for part in ("start", "end"):
            if part not in v:
                raise ScenarioError(
                    f"{where}: {key} ramp is missing '{part}': write {key} = {{start = ..., end = ...}}"
                )
        return Ramp(
            _number(where, key, v["start"], f"{key}.start"),
            _number(where, key, v["end"], f"{key}.end"),
        )
    x = _number(where, key, v)
    return Ramp(x, x)


def _prior(where: str, v: Any) -> tuple[float, ...]:
    if v is None:
        return (1.0 / N_CLASSES,) * N_CLASSES
    if not isinstance(v, list):
        raise ScenarioError(
            f"{where}: class_prior = {v!r} is not a list: give one weight per class, e.g. [1, 1, ...]"
        )
    if len(v) != N_CLASSES:
        raise ScenarioError(
            f"{where}: class_prior has {len(v)} values, the task has {N_CLASSES} classes: "
            "give one weight per class"
        )
    for c, w in enumerate(v):
        if not is_number(w) or w < 0:
            raise ScenarioError(
                f"{where}: class_prior[{c}] = {w!r}: weights must be non-negative numbers"
            )
    total = float(sum(v))
    if total <= 0:
        raise ScenarioError(
            f"{where}: class_prior is all zeros: give at least one class a weight > 0"
        )
    return tuple(float(w) / total for w in v)


def _attrs(where: str, v: Any) -> tuple[tuple[str, str], ...]:
    why = "the simulator sets it on every row"
    return sp.attrs(where, v, RESERVED_ATTRS, ScenarioError, 'device = "a"', why, True)


def _phase(number: int, data: Any) -> Phase:
    where = f"phase {number}"
    data = sp.phase_table(where, data, PHASE_KEYS, ScenarioError)
    fix = "say how many batches it lasts, e.g. batches = 5"
    batches = sp.require(where, data, "batches", fix, ScenarioError)
    return Phase(
        batches=sp.whole(where, "batches", batches, 1, error=ScenarioError),
        rotation=_ramp(where, "rotation", data.get("rotation")),
        noise=_ramp(where, "noise", data.get("noise")),
        thickness=_ramp(where, "thickness", data.get("thickness")),
        invert=_ramp(where, "invert", data.get("invert")),
        class_prior=_prior(where, data.get("class_prior")),
        attrs=_attrs(where, data.get("attrs")),
    )


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a parsed TOML document; `source` (a path) prefixes every error message."""
    return sp.prefixed(_parse, data, source, ScenarioError)


def _parse(data: dict[str, Any]) -> Scenario:
    sp.check_top_keys(data, TOP_KEYS, PHASE_KEYS, ScenarioError)
    if data.get("task", "digits") != "digits":  # a scenario names its task; this is digits'
        raise ScenarioError(
            f"task = {data['task']!r}: this is a digits scenario reader; run the file with "
            'its task (loopwright demo/bench pick it from the file) or set task = "digits"'
        )
    name = sp.top_name(data, '"rotation-ramp"', ScenarioError)
    seed = sp.whole("", "seed", data["seed"], 0, error=ScenarioError)
    batch_size = data["batch_size"]
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ScenarioError(f"batch_size = {batch_size!r} must be a whole number > 0")
    phases = sp.phase_list(data, ScenarioError)
    return Scenario(
        name=name,
        seed=seed,
        batch_size=batch_size,
        phases=tuple(_phase(i, p) for i, p in enumerate(phases, start=1)),
    )


def find_scenario(name_or_path: str | Path) -> Path:
    """A scenario by path, or by name from the project's scenarios/ folder ("demo-rotation").

    Why: the CLI and the demo take `--scenario demo-rotation`; users pass their own file path.
    """
    from retrain.simulation import find_in

    return find_in(SCENARIOS_DIR, name_or_path, "a bundled scenario", ScenarioError)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    path = Path(path)
    data = sp.read_toml(path, ScenarioError, ": check the path (see scenarios/)")
    return parse_scenario(data, source=str(path))
