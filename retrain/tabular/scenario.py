"""Tabular scenario files: phases of River Agrawal traffic, each with its concept and drift.

A phase says which of Agrawal's ten classification functions labels its rows (`concept`,
0..9: changing it is concept drift), over how many batches the switch from the previous
phase's concept is spread (`width`: 0 is a sudden switch; else the share of rows under the
new concept follows River's `ConceptDriftStream` sigmoid, centred in that span), numeric
fields moved by a number of their units (`shift = { salary = 40000 }`: covariate drift, the
concept still decides the label), the class mix (`class_prior`: label shift) and slice
attributes. Errors name the key, the phase (counted from 1) and the fix, as digits' do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain import scenario_parse as sp
from retrain.tabular.schema import NUMERIC

TASK_NAME = "tabular"
N_CONCEPTS = 10
N_CLASSES = 2
TOP_KEYS = ("name", "seed", "batch_size", "task", "phase")
PHASE_KEYS = ("batches", "concept", "width", "shift", "class_prior", "attrs")
RESERVED_ATTRS = ("phase", "batch", "elevel", "zipband")  # the simulator stamps these


class ScenarioError(ValueError):
    """A tabular scenario file is invalid; the message names the key, the phase and the fix."""


@dataclass(frozen=True)
class Phase:
    batches: int
    concept: int
    previous: int  # the concept before this phase (its own for phase 1)
    width: int  # batches over which previous -> concept (0: sudden)
    shift: tuple[tuple[str, float], ...]
    class_prior: tuple[float, ...] | None  # None: as the concept gives them
    attrs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BatchParams:
    """What draws the rows of one batch. Row t of the batch is under `concept` with
    probability `p_new[t]`, else under `previous`."""

    phase: int
    concept: int
    previous: int
    p_new: tuple[float, ...]
    shift: tuple[tuple[str, float], ...]
    class_prior: tuple[float, ...] | None
    attrs: dict[str, str]

    def data_params(self) -> tuple:
        """What shapes the data: two batches drift apart iff these differ."""
        mix = round(sum(self.p_new) / len(self.p_new), 6)
        concepts = (self.concept,) if mix == 1.0 else (self.previous, self.concept, mix)
        if self.previous == self.concept:
            concepts = (self.concept,)
        return (concepts, self.shift, self.class_prior)


def sigmoid_share(t: float, position: float, width: float) -> float:
    """River's `ConceptDriftStream` probability that row t follows the new concept.

    >>> round(sigmoid_share(50, 50, 100), 3), round(sigmoid_share(0, 50, 100), 3)
    (0.5, 0.119)
    """
    x = -4.0 * (t - position) / width
    return 1.0 / (1.0 + math.exp(min(x, 700.0)))


@dataclass(frozen=True)
class TabularScenario(sp.PhasedScenario):
    phases: tuple[Phase, ...]

    def params_at(self, i: int) -> BatchParams:
        if not 0 <= i < self.n_batches:
            raise IndexError(
                f"batch {i} is outside scenario {self.name!r} (batches 0..{self.n_batches - 1})"
            )
        index, k = self.locate(i)
        phase = self.phases[index]
        n = self.batch_size
        if phase.width == 0 or phase.previous == phase.concept:
            p = (1.0,) * n
        else:
            span = phase.width * n
            p = tuple(sigmoid_share(k * n + j, span / 2, span) for j in range(n))
        return BatchParams(
            phase=index,
            concept=phase.concept,
            previous=phase.previous,
            p_new=p,
            shift=phase.shift,
            class_prior=phase.class_prior,
            attrs=dict(phase.attrs),
        )

    @property
    def onset_batch(self) -> int | None:
        return sp.first_change(self.n_batches, lambda i: self.params_at(i).data_params())


def _whole(where: str, key: str, v: Any, low: int, high: int | None = None) -> int:
    return sp.whole(where, key, v, low, high, error=ScenarioError)


def _number(where: str, key: str, v: Any) -> float:
    return sp.number(where, key, v, error=ScenarioError)


def _shift(where: str, v: Any) -> tuple[tuple[str, float], ...]:
    if v is None:
        return ()
    if not isinstance(v, dict):
        raise ScenarioError(f"{where}: shift = {v!r}: write shift = {{ salary = 40000 }}")
    for key in v:
        if key not in NUMERIC:
            raise ScenarioError(
                f"{where}: shift.{key} is not a numeric field: use one of {list(NUMERIC)}"
            )
    return tuple(sorted((k, _number(where, f"shift.{k}", x)) for k, x in v.items()))


def _prior(where: str, v: Any) -> tuple[float, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != N_CLASSES:
        raise ScenarioError(
            f"{where}: class_prior = {v!r}: give {N_CLASSES} weights, one per class, e.g. [1, 3]"
        )
    weights = [_number(where, "class_prior", w) for w in v]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ScenarioError(f"{where}: class_prior = {v!r}: weights must be >= 0, not all 0")
    return tuple(w / sum(weights) for w in weights)


def _attrs(where: str, v: Any) -> tuple[tuple[str, str], ...]:
    return sp.attrs(
        where, v, RESERVED_ATTRS, ScenarioError, 'region = "a"', "the simulator sets it"
    )


def _phase(number: int, data: Any, previous: int) -> Phase:
    where = f"phase {number}"
    data = sp.phase_table(where, data, PHASE_KEYS, ScenarioError)
    fix = "say how many batches it lasts"
    batches = _whole(where, "batches", sp.require(where, data, "batches", fix, ScenarioError), 1)
    concept = _whole(where, "concept", data.get("concept", previous), 0, N_CONCEPTS - 1)
    width = _whole(where, "width", data.get("width", 0), 0, batches)
    if width and number == 1:
        raise ScenarioError(f"{where}: width = {width}: the first phase has no concept to leave")
    return Phase(
        batches=batches,
        concept=concept,
        previous=previous if number > 1 else concept,
        width=width,
        shift=_shift(where, data.get("shift")),
        class_prior=_prior(where, data.get("class_prior")),
        attrs=_attrs(where, data.get("attrs")),
    )


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> TabularScenario:
    """Validate a parsed TOML document; `source` (a path) prefixes every error message."""
    return sp.prefixed(_parse, data, source, ScenarioError)


def _parse(data: dict[str, Any]) -> TabularScenario:
    sp.check_top_keys(data, TOP_KEYS, PHASE_KEYS, ScenarioError)
    task = data.get("task", TASK_NAME)
    if task != TASK_NAME:
        raise ScenarioError(
            f'task = {task!r}: this is a {TASK_NAME!r} scenario reader; set task = "{TASK_NAME}"'
        )
    name = sp.top_name(data, '"tabular-switch"', ScenarioError)
    phases = sp.phase_list(data, ScenarioError)
    parsed: list[Phase] = []
    previous = 0
    for number, p in enumerate(phases, start=1):
        phase = _phase(number, p, previous)
        parsed.append(phase)
        previous = phase.concept
    return TabularScenario(
        name=name,
        seed=_whole("top level", "seed", data["seed"], 0),
        batch_size=_whole("top level", "batch_size", data["batch_size"], 1),
        phases=tuple(parsed),
    )


def load_scenario(path: str | Path) -> TabularScenario:
    path = Path(path)
    data = sp.read_toml(path, ScenarioError, ": check the path (see scenarios/)")
    return parse_scenario(data, source=str(path))
