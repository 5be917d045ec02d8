"""The checks every task's scenario reader shares: strict TOML, errors naming key, phase, fix.

Why one module: the digits, tabular and test-wine readers check the same things (unknown
keys, whole numbers, slice attributes, the source prefix) and must say so alike; each task
keeps its own keys and its own wording where its messages differ (`error` is the task's
`ScenarioError`, so callers can still catch one reader's errors).

Pure and light: no project imports, so any task's scenario module can use it.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Error = type[ValueError]


@dataclass(frozen=True)
class PhasedScenario:
    """What every task's scenario is: a name, a stream seed, a batch size and phases (each
    with its `batches`); a task's scenario adds how its phases shape the data."""

    name: str
    seed: int
    batch_size: int
    phases: tuple[Any, ...]

    @property
    def n_batches(self) -> int:
        return sum(p.batches for p in self.phases)

    def locate(self, i: int) -> tuple[int, int]:
        """(0-based phase, batch within that phase) of batch i."""
        k = i
        for index, phase in enumerate(self.phases):
            if k < phase.batches:
                return index, k
            k -= phase.batches
        raise IndexError(f"batch {i} is outside scenario {self.name!r} (0..{self.n_batches - 1})")


def is_number(v: Any) -> bool:
    """A finite int or float, not a bool (TOML's `true` is no weight)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def number(where: str, key: str, v: Any, error: Error = ValueError, unit: str = "") -> float:
    """`v` as a float; `unit` (e.g. " (standard deviations)") ends the error message."""
    if not is_number(v):
        raise error(f"{where}: {key} = {v!r} is not a number{unit}")
    return float(v)


def whole(
    where: str, key: str, v: Any, low: int, high: int | None = None, error: Error = ValueError
) -> int:
    """`v` as a whole number in low..high (no upper bound when `high` is None); an empty
    `where` gives a message without a place (a top-level key)."""
    if not isinstance(v, int) or isinstance(v, bool) or v < low or (high is not None and v > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        prefix = f"{where}: " if where else ""
        raise error(f"{prefix}{key} = {v!r} must be a whole number {bound}")
    return v


def prefixed(
    parse: Callable[[dict[str, Any]], T], data: dict[str, Any], source: str, error: Error
) -> T:
    """`parse(data)` with `source` (a path) prefixing the message of any `error` it raises."""
    try:
        return parse(data)
    except error as exc:
        raise error(f"{source}: {exc}") from None


def check_top_keys(
    data: dict[str, Any], top_keys: Iterable[str], phase_keys: Iterable[str], error: Error
) -> None:
    """No unknown top-level key; a phase key written at the top gets a hint where it goes."""
    top_keys, phase_keys = tuple(top_keys), tuple(phase_keys)
    unknown = sorted(set(data) - set(top_keys))
    if unknown:
        hint = " (phase keys go under [[phase]])" if unknown[0] in phase_keys else ""
        raise error(f"unknown top-level key {unknown[0]!r}{hint} (known: {', '.join(top_keys)})")


def top_name(data: dict[str, Any], name_example: str, error: Error) -> str:
    """The scenario's name, once name, seed and batch_size are all present (`name_example`
    is a quoted name for the missing-key hint)."""
    for key, example in (("name", name_example), ("seed", "7"), ("batch_size", "200")):
        if key not in data:
            raise error(f"missing top-level key '{key}': add e.g. {key} = {example}")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise error(f"name = {name!r} must be a non-empty string")
    return name


def phase_list(data: dict[str, Any], error: Error) -> list[Any]:
    """The [[phase]] tables: at least one."""
    phases = data.get("phase")
    if not isinstance(phases, list) or not phases:
        raise error("no phases: add at least one [[phase]] section with batches = N")
    return phases


def phase_table(where: str, data: Any, phase_keys: Iterable[str], error: Error) -> dict[str, Any]:
    """One [[phase]] as a table of known keys only."""
    phase_keys = tuple(phase_keys)
    if not isinstance(data, dict):
        raise error(f"{where} is not a table: write each phase as a [[phase]] section")
    unknown = sorted(set(data) - set(phase_keys))
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(phase_keys)})")
    return data


def require(where: str, data: dict[str, Any], key: str, fix: str, error: Error) -> Any:
    """`data[key]`, else an error saying `fix`."""
    if key not in data:
        raise error(f"{where}: missing key '{key}': {fix}")
    return data[key]


def attrs(
    where: str,
    v: Any,
    reserved: Iterable[str],
    error: Error,
    example: str,
    reserved_why: str,
    quote_example: bool = False,
) -> tuple[tuple[str, str], ...]:
    """A phase's slice attributes (string -> string), sorted; `reserved` are the keys the
    simulator stamps itself. `example` is a task's own `key = "value"` for the hint."""
    if v is None:
        return ()
    if not isinstance(v, dict):
        raise error(f"{where}: attrs = {v!r} is not a table: write attrs = {{ {example} }}")
    for key, value in v.items():
        if key in tuple(reserved):
            raise error(f"{where}: attrs.{key} is reserved ({reserved_why}): rename it")
        if not isinstance(value, str):
            hint = f', e.g. "{value}"' if quote_example else ""
            raise error(f"{where}: attrs.{key} = {value!r} is not a string: quote it{hint}")
    return tuple(sorted(v.items()))


def first_change(n_batches: int, params: Callable[[int], object]) -> int | None:
    """The first batch whose `params(i)` differ from batch 0's (where drift starts), or None."""
    first = params(0)
    for i in range(1, n_batches):
        if params(i) != first:
            return i
    return None


def read_toml(path: Path, error: Error, missing_fix: str = "") -> dict[str, Any]:
    """A scenario file's TOML document; `missing_fix` (e.g. ": check the path") ends the
    message for a file that is not there."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise error(f"{path}: no such scenario file{missing_fix}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})") from None
