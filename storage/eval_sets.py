"""Evaluation-set versions: which labeled rows every report card judges models on, with lineage.

Why its own versioned thing: the eval set is what a promotion is decided on, so it must be
traceable like a training set, and it must only grow: `ev-0003` holds every row of its
parent `ev-0002` plus the new eval rows, so nothing judged on yesterday moves back into
training (a model trained on an eval row would be judged on its own homework). The manifest
also keeps the side of every split group decided so far (eval or train): a source image
(digits' `scan`) seen first in training stays training, so near-copies never straddle.

Files: `<home>/eval/ev-NNNN.json` with id, parent, created, row ids and labels, group sides,
the composition (by source, row kind, slice and time bucket) and a content sha256.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.home import DataHome, StorageError
from storage.manifests import id_pattern, read_checked, store_new

_ID_RE = id_pattern("ev")


def eval_folder(home: DataHome) -> Path:
    """`<home>/eval`: next to `datasets/` (DataHome has no property for it yet)."""
    return home.root / "eval"


@dataclass(frozen=True)
class EvalSet:
    id: str
    parent: str | None
    created: str
    row_ids: tuple[str, ...]
    labels: tuple[str, ...]
    groups: dict[str, str]  # split key -> "eval" | "train", every group decided so far
    composition: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    added: int = 0  # rows new in this version (the rest are the parent's)
    sha256: str = ""

    @property
    def n(self) -> int:
        return len(self.row_ids)

    def summary(self) -> dict[str, Any]:
        """What a report card shows about it (no row ids)."""
        return {
            "version": self.id,
            "parent": self.parent,
            "created": self.created,
            "n": self.n,
            "added": self.added,
            "composition": self.composition,
            "params": self.params,
        }


def composition(
    sources: Sequence[str | None],
    kinds: Sequence[str],
    attrs: Sequence[Mapping[str, Any] | None],
    buckets: Sequence[str],
    slice_keys: Sequence[str],
) -> dict[str, Any]:
    """Counts of the eval rows by label source, row kind, each slice attr and time bucket.

    >>> composition(["seed", "labelstudio"], ["seed", "audit"], [{"phase": "0"}, {}], ["seed", "batch 3"], ["phase"])
    {'source': {'labelstudio': 1, 'seed': 1}, 'kind': {'audit': 1, 'seed': 1}, 'slices': {'phase': {'(none)': 1, '0': 1}}, 'time': {'batch 3': 1, 'seed': 1}}
    """

    def count(values) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in values:
            out[str(v)] = out.get(str(v), 0) + 1
        return dict(sorted(out.items()))

    slices = {key: count((a or {}).get(key) or "(none)" for a in attrs) for key in slice_keys}
    return {
        "source": count(s or "unknown" for s in sources),
        "kind": count(kinds),
        "slices": slices,
        "time": count(buckets),
    }


def create_eval_set(
    home: DataHome,
    parent: EvalSet | None,
    new_ids: Sequence[str],
    new_labels: Sequence[str],
    new_groups: Mapping[str, str],
    composition_of: Mapping[str, Any],
    params: Mapping[str, Any],
) -> EvalSet:
    """The next version: the parent's rows + `new_ids`, the parent's group sides + `new_groups`.

    Nothing new (no row, no group): the parent itself is returned, no file is written.
    `composition_of` describes the whole new version (the caller counts its rows).
    """
    if len(new_ids) != len(new_labels):
        raise StorageError(f"{len(new_ids)} new eval ids but {len(new_labels)} labels: one each")
    old_ids = set(parent.row_ids) if parent else set()
    again = [r for r in new_ids if r in old_ids]
    if again:
        raise StorageError(f"row {again[0]!r} is already in {parent.id}: pass only new eval rows")
    if len(set(new_ids)) != len(new_ids):
        raise StorageError("new_ids has a request id more than once: pass each row once")
    bad = {k: v for k, v in new_groups.items() if v not in ("eval", "train")}
    if bad:
        raise StorageError(f"group sides {bad} are not 'eval' or 'train': pass one of them")
    moved = [k for k in new_groups if parent and k in parent.groups]
    if moved:
        raise StorageError(f"group {moved[0]!r} already has a side in {parent.id}: it never moves")
    if parent is not None and not new_ids and not new_groups:
        return parent
    manifest: dict[str, Any] = {
        "id": "",
        "parent": parent.id if parent else None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "row_ids": [*(parent.row_ids if parent else ()), *new_ids],
        "labels": [*(parent.labels if parent else ()), *new_labels],
        "groups": {**(parent.groups if parent else {}), **dict(new_groups)},
        "composition": dict(composition_of),
        "params": dict(params),
        "added": len(new_ids),
    }
    return _from_manifest(store_new(eval_folder(home), "ev", manifest, "eval set"))


def _from_manifest(m: Mapping[str, Any]) -> EvalSet:
    return EvalSet(
        id=m["id"],
        parent=m["parent"],
        created=m["created"],
        row_ids=tuple(m["row_ids"]),
        labels=tuple(m["labels"]),
        groups=dict(m["groups"]),
        composition=dict(m["composition"]),
        params=dict(m["params"]),
        added=int(m["added"]),
        sha256=m["sha256"],
    )


def load_eval_set(home: DataHome, eval_id: str) -> EvalSet:
    """Read a manifest and check its sha256, so a hand-edited eval set cannot pass silently."""
    if not isinstance(eval_id, str) or not _ID_RE.match(eval_id):
        raise StorageError(
            f"eval set id {eval_id!r} is not an eval set id (ev-0001, ...): "
            "pass one from list_eval_sets()"
        )
    path = eval_folder(home) / f"{eval_id}.json"
    known = list_eval_sets(home) if not path.is_file() else []
    fix = f"restore {path} from a backup"
    return _from_manifest(read_checked(path, f"eval set {eval_id}", known, fix))


def list_eval_sets(home: DataHome) -> list[str]:
    """Eval set ids on disk, oldest first."""
    folder = eval_folder(home)
    if not folder.is_dir():
        return []
    found = [
        (int(m[1]), m[0])
        for p in folder.glob("ev-*.json")
        if (m := _ID_RE.match(p.name.removesuffix(".json")))
    ]
    return [name for _, name in sorted(found)]


def latest_eval_set(home: DataHome) -> EvalSet | None:
    """The newest version (the parent of the next one), or None on a new home."""
    ids = list_eval_sets(home)
    return load_eval_set(home, ids[-1]) if ids else None
