"""Which parts of one partition compaction merges, and into how many files: a pure decision
over file names, sizes and ages (tested without writing a byte).

A group is a run of *adjacent* files in name order (the readers' tie-break order), so that
the merged file, named after the group's last part, takes exactly the group's place. A file
that is big enough already, too young, or superseded (merged, waiting for deletion) ends a
run rather than being jumped over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from storage.parquet_parts import part_stamp
from storage.settings import StorageSettings


@dataclass(frozen=True)
class PartInfo:
    path: Path
    size: int  # bytes
    age_s: float  # since it became visible (the stamp in its name, else its mtime)


@dataclass(frozen=True)
class Group:
    sources: tuple[Path, ...]  # adjacent in name order
    bytes: int


def describe(files: Iterable[Path], now: float) -> list[PartInfo]:
    """Size and age of each file that still exists, in name order."""
    out = []
    for path in sorted(files):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        stamp = part_stamp(path.name)
        born = stamp.timestamp() if stamp is not None else st.st_mtime
        out.append(PartInfo(path, st.st_size, now - born))
    return out


def plan_groups(
    parts: Iterable[PartInfo], superseded: set[str], settings: StorageSettings
) -> list[Group]:
    """Cut each run of adjacent small (< half the target), old-enough, live parts into groups
    that close once they reach the target size; a run's last, smaller group is merged only
    if it has at least `compact_min_parts` files (and always at least 2).

    >>> s = StorageSettings(compact_target_mb=1, compact_min_parts=3, compact_min_age_s=60)
    >>> def parts(*sizes, age=100):
    ...     return [PartInfo(Path(f"p{i:02d}.parquet"), n, age) for i, n in enumerate(sizes)]
    >>> [len(g.sources) for g in plan_groups(parts(*[300_000] * 8), set(), s)]
    [4, 4]
    >>> [[p.name for p in g.sources] for g in plan_groups(parts(9, 9, 600_000, 9, 9, 9), set(), s)]
    [['p03.parquet', 'p04.parquet', 'p05.parquet']]
    >>> plan_groups(parts(9, 9, 9, age=10), set(), s)  # too young
    []
    >>> plan_groups(parts(9, 9, 9), {"p01.parquet"}, s)  # a superseded part splits the run
    []
    """
    half = settings.target_bytes / 2
    runs: list[list[PartInfo]] = [[]]
    for part in sorted(parts, key=lambda p: p.path.name):
        ok = part.path.name not in superseded and part.size < half
        if ok and part.age_s >= settings.compact_min_age_s:
            runs[-1].append(part)
        elif runs[-1]:
            runs.append([])
    groups: list[list[PartInfo]] = []
    for run in runs:
        chunk: list[PartInfo] = []
        for part in run:
            chunk.append(part)
            if sum(p.size for p in chunk) >= settings.target_bytes:
                groups.append(chunk)
                chunk = []
        if len(chunk) >= settings.compact_min_parts:
            groups.append(chunk)
    return [Group(tuple(p.path for p in g), sum(p.size for p in g)) for g in groups if len(g) >= 2]
