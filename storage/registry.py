"""The model registry (contract): immutable version folders and movable aliases.

`models/vNNNN/{weights.pt, meta.json}` never change once visible (written to a temp folder,
renamed into place). Aliases, the canary's traffic weight and their full history live in
one file, `registry.json`, replaced atomically under an exclusive lock, so an alias move (or a
weight change) and its history event land together or not at all, and `rollback` is one step.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.atomic import fsync_dir, to_json, write_json_atomic
from storage.home import DataHome, StorageError
from storage.maintenance import clean_models

if TYPE_CHECKING:  # torch is imported where used: `import storage` stays light
    import torch

ALIASES = ("champion", "challenger", "shadow", "canary")
WEIGHTED = ("canary",)  # aliases that carry a traffic weight in [0, 1]
_VERSION_RE = re.compile(r"^v(\d{4,})\Z")
REQUIRED_META = ("task", "classes")


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()  # `expected=ANY`: move the alias whatever it points to now


class AliasConflict(StorageError):
    """The alias moved since the caller read it (compare-and-swap lost)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# flock belongs to an open file description: a second open+flock of the same file in this
# process would wait on itself. The outermost holder per lock path takes the flock; nested
# `Registry.lock()` calls in the same thread (a rollout writing its state and moving the canary
# in one critical section) only count depth.
_LOCKS: dict[str, threading.RLock] = {}
_DEPTH: dict[str, int] = {}
_LOCKS_GUARD = threading.Lock()


def _check_weight(weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise StorageError(f"weight {weight!r} is not a number: pass a share of traffic in [0, 1]")
    value = float(weight)
    if not 0.0 <= value <= 1.0:
        raise StorageError(
            f"weight {weight!r} is outside [0, 1]: pass a share of traffic (0.05 for 5 %)"
        )
    return value


def checked_target(home: DataHome, alias: str, version: Any) -> str | None:
    """`version` if it is a version name whose folder exists, else a StorageError naming the
    alias and the fix. Every reader of an alias goes through this (`Registry.get`, the
    serving routing), so a damaged registry.json is refused the same way everywhere."""
    if version is None:
        return None
    if not (isinstance(version, str) and _VERSION_RE.match(version)):
        raise StorageError(
            f"alias {alias} in {home.registry_file} points to {version!r}, which is not "
            "a version name (v0001, v0002...): restore registry.json from a backup"
        )
    if not (home.models / version / "meta.json").is_file():
        raise StorageError(
            f"alias {alias} points to {version}, but {home.models / version} is missing: "
            "restore the folder or move the alias (loopwright rollback)"
        )
    return version


class Registry:
    """`Registry(home).get("champion")` -> "v0003"; `load("v0003")` -> (state_dict, meta)."""

    def __init__(self, home: DataHome) -> None:
        self.home = home

    # -- versions -----------------------------------------------------------------------
    def _folder(self, version: str) -> Path:
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise StorageError(
                f"model version {version!r} is not a version name (v0001, v0002...): "
                "pass one from Registry.versions()"
            )
        return self.home.models / version

    def versions(self) -> list[str]:
        """Visible versions, oldest first (temp folders of unfinished registrations excluded)."""
        if not self.home.models.is_dir():
            return []
        found = [
            (int(m[1]), m[0])
            for p in self.home.models.iterdir()
            if (m := _VERSION_RE.match(p.name))
        ]
        return [name for _, name in sorted(found)]

    def exists(self, version: str) -> bool:
        return (self._folder(version) / "meta.json").is_file()

    def meta(self, version: str) -> dict:
        path = self._folder(version) / "meta.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise StorageError(
                f"model {version} does not exist: known versions are {self.versions()}"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StorageError(
                f"model {version} is corrupted: {path} is not valid JSON ({err}): "
                "restore it or roll back"
            ) from None

    def register(self, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
        """Store weights and metadata as the next version; return its name.

        The weights are written outside the lock (they may be large); only the name allocation
        and the rename happen under it.
        """
        import torch

        for key in REQUIRED_META:
            if key not in meta:
                raise StorageError(f"meta has no {key!r}: pass the task name and its class list")
        for name, value in state_dict.items():
            if not isinstance(value, torch.Tensor):
                raise StorageError(
                    f"state_dict[{name!r}] is {type(value).__name__}: pass module.state_dict()"
                )
        info = {"dataset_version": None, "parent": None, "metrics": {}, **dict(meta)}
        to_json(info, "meta")  # fail early, before any file is written
        self.home.models.mkdir(parents=True, exist_ok=True)
        self.clean_leftovers()
        # the name `storage.maintenance.MODEL_TMP_RE` knows: cleaned once this pid is gone
        tmp = self.home.models / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            weights = tmp / "weights.pt"
            with open(weights, "wb") as f:
                torch.save(dict(state_dict), f)
                f.flush()
                os.fsync(f.fileno())
            info["sha256"] = _sha256(weights)
            with self._lock():
                existing = self.versions()
                number = int(existing[-1][1:]) + 1 if existing else 1
                version = f"v{number:04d}"
                info.update(version=version, created=_now())
                write_json_atomic(tmp / "meta.json", info, "meta")
                os.rename(tmp, self.home.models / version)
                fsync_dir(self.home.models)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return version

    def load(self, version: str) -> tuple[dict, dict]:
        """Weights (checked against the sha256 in meta) and metadata of `version`."""
        import torch

        folder = self._folder(version)
        meta = self.meta(version)
        weights = folder / "weights.pt"
        if not weights.is_file():
            raise StorageError(f"model {version} has no weights.pt: restore it or roll back")
        actual = _sha256(weights)
        if actual != meta.get("sha256"):
            raise StorageError(
                f"model {version} is corrupted: weights.pt sha256 {actual[:12]}... != meta "
                f"{str(meta.get('sha256'))[:12]}...: restore it or roll back"
            )
        try:
            state = torch.load(weights, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as err:
            raise StorageError(
                f"model {version} is refused: weights.pt holds objects other than tensors, which "
                "torch.load(weights_only=True) does not run: re-register it from "
                "module.state_dict() or roll back"
            ) from err
        return state, meta

    def clean_leftovers(self) -> int:
        """Remove temp folders of registrations whose process died; return how many.

        They were never visible as versions (`versions()` ignores them); this only frees disk.
        """
        return clean_models(self.home.models)

    # -- aliases ------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """The registry's exclusive lock (across processes), re-entrant within a thread, so
        that a caller can read, decide and move several things as one critical section."""
        key = str(self.home.registry_lock.absolute())
        with _LOCKS_GUARD:
            local = _LOCKS.setdefault(key, threading.RLock())
        with local:
            depth = _DEPTH.get(key, 0)
            if depth:
                _DEPTH[key] = depth + 1
                try:
                    yield
                finally:
                    _DEPTH[key] -= 1
                return
            self.home.root.mkdir(parents=True, exist_ok=True)
            with open(self.home.registry_lock, "a+") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                _DEPTH[key] = 1
                try:
                    yield
                finally:
                    _DEPTH[key] = 0
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    _lock = lock

    def _read(self) -> dict:
        try:
            data = json.loads(self.home.registry_file.read_text())
        except FileNotFoundError:
            return {"aliases": {}, "weights": {}, "history": [], "priors": {}}
        except json.JSONDecodeError as err:
            raise StorageError(
                f"{self.home.registry_file} is not valid JSON ({err}): restore it from a backup"
            ) from err
        return {
            "aliases": dict(data.get("aliases", {})),
            "weights": dict(data.get("weights", {})),
            "history": list(data.get("history", [])),
            "priors": dict(data.get("priors", {})),
        }

    def snapshot(self) -> dict:
        """Aliases, weights and history from one read of registry.json (a consistent view)."""
        return self._read()

    @staticmethod
    def _check_alias(alias: str) -> None:
        if alias not in ALIASES:
            raise StorageError(f"alias {alias!r} is unknown: use one of {list(ALIASES)}")

    def aliases(self) -> dict[str, str]:
        return self._read()["aliases"]

    def history(self) -> list[dict]:
        """Every alias move and weight change, oldest first."""
        return self._read()["history"]

    def weights(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._read()["weights"].items()}

    def weight(self, alias: str) -> float:
        """Traffic share of a weighted alias (0.0 when never set)."""
        self._check_weighted(alias)
        return self.weights().get(alias, 0.0)

    @staticmethod
    def _check_weighted(alias: str) -> None:
        if alias not in WEIGHTED:
            raise StorageError(
                f"alias {alias!r} carries no traffic weight: only {list(WEIGHTED)} do"
            )

    def get(self, alias: str) -> str | None:
        """The version `alias` points to, or None when it was never set."""
        self._check_alias(alias)
        return checked_target(self.home, alias, self.aliases().get(alias))

    @staticmethod
    def _event(data: dict, alias: str, old: Any, new: Any, reason: str, actor: str, kind: str):
        history = data["history"]
        event = {
            "seq": (history[-1]["seq"] + 1) if history else 1,
            "ts": _now(),
            "alias": alias,
            "from": old,
            "to": new,
            "reason": reason,
            "actor": actor,
            "kind": kind,
        }
        history.append(event)
        return event

    def _move(
        self, data: dict, alias: str, version: str, reason: str, actor: str, kind: str
    ) -> dict:
        event = self._event(data, alias, data["aliases"].get(alias), version, reason, actor, kind)
        data["aliases"][alias] = version
        write_json_atomic(self.home.registry_file, data, "registry")
        return event

    @contextmanager
    def _swap(self, alias: str, expected: Any, weight: bool = False) -> Iterator[tuple[dict, Any]]:
        """Under the lock: the registry and what `alias` points to now (its traffic share with
        `weight`); with `expected` (not ANY), a compare-and-swap: `AliasConflict` when that
        differs, before the caller changes anything."""
        with self._lock():
            data = self._read()
            if weight:
                current = float(data["weights"].get(alias, 0.0))
                if expected is not ANY and current != _check_weight(expected):
                    raise AliasConflict(
                        f"weight of {alias} is {current}, expected {expected}: it changed "
                        "meanwhile; re-read it and decide again"
                    )
            else:
                current = data["aliases"].get(alias)
                if expected is not ANY and current != expected:
                    raise AliasConflict(
                        f"alias {alias} points to {current}, expected {expected}: it moved "
                        "meanwhile; re-read it and decide again"
                    )
            yield data, current

    @staticmethod
    def _check_reason(reason: str, actor: str) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise StorageError("reason is empty: say why the alias moves (it is the audit trail)")
        if not isinstance(actor, str) or not actor.strip():
            raise StorageError("actor is empty: name who moves the alias")

    def set_alias(
        self,
        alias: str,
        version: str,
        *,
        reason: str,
        actor: str = "loopwright",
        expected: Any = ANY,
    ) -> dict:
        """Point `alias` at `version`; return the history event.

        With `expected` (a version or None), this is a compare-and-swap: if the alias points
        elsewhere now, `AliasConflict` is raised and nothing changes.
        """
        self._check_alias(alias)
        self._check_reason(reason, actor)
        if not self.exists(version):
            raise StorageError(
                f"model {version} does not exist: register it first ({self.versions()})"
            )
        with self._swap(alias, expected) as (data, _current):
            return self._move(data, alias, version, reason, actor, "set")

    def set_weight(
        self,
        alias: str,
        weight: float,
        *,
        reason: str,
        actor: str = "loopwright",
        expected: Any = ANY,
    ) -> dict:
        """Set the traffic share of a weighted alias (`canary`); return the history event
        (kind "weight", from/to the weights, with the version it applies to).

        With `expected` (a weight), a compare-and-swap like `set_alias`: a concurrent change
        wins and this one raises `AliasConflict`. A positive weight needs the alias set:
        traffic cannot go to no model.
        """
        self._check_weighted(alias)
        self._check_reason(reason, actor)
        value = _check_weight(weight)
        with self._swap(alias, expected, weight=True) as (data, current):
            if value > 0 and data["aliases"].get(alias) is None:
                raise StorageError(
                    f"alias {alias} is not set: point it at a version before giving it traffic"
                )
            event = self._event(data, alias, current, value, reason, actor, "weight")
            event["version"] = data["aliases"].get(alias)
            data["weights"][alias] = value
            write_json_atomic(self.home.registry_file, data, "registry")
            return event

    def priors(self) -> dict[str, dict]:
        """The label-shift corrections served, by version (`retrain.label_shift`)."""
        return self._read()["priors"]

    def set_prior(
        self, version: str, correction: dict | None, *, reason: str, actor: str = "loopwright"
    ) -> dict:
        """Serve `version`'s posteriors re-weighted by `correction["weights"]` (one per class:
        estimated prior / training prior), or raw again with None; return the history event
        (kind "prior", alias "-", from/to the weights). Written in the registry so that every
        server and score-batch picks it up with the routing, for this version only."""
        self._check_reason(reason, actor)
        if not self.exists(version):
            raise StorageError(
                f"model {version} does not exist: known versions are {self.versions()}"
            )
        if correction is not None:
            weights = correction.get("weights")
            n = len(self.meta(version).get("classes") or [])
            if (
                not isinstance(weights, list)
                or len(weights) != n
                or not all(isinstance(w, int | float) and w > 0 for w in weights)
            ):
                raise StorageError(
                    f"correction for {version}: weights must be {n} positive numbers (one "
                    f"per class), got {weights!r}"
                )
        with self._lock():
            data = self._read()
            old = (data["priors"].get(version) or {}).get("weights")
            event = self._event(
                data, "-", old, None if correction is None else correction["weights"],
                reason, actor, "prior",
            )  # fmt: skip
            event["version"] = version
            if correction is None:
                data["priors"].pop(version, None)
            else:
                data["priors"][version] = {**correction, "ts": event["ts"]}
            write_json_atomic(self.home.registry_file, data, "registry")
            return event

    def clear_alias(
        self, alias: str, *, reason: str, actor: str = "loopwright", expected: Any = ANY
    ) -> dict:
        """Unset an alias (kind "clear"; a weighted one drops to weight 0 in the same write);
        return the history event. `champion` is never cleared: something must serve."""
        self._check_alias(alias)
        self._check_reason(reason, actor)
        if alias == "champion":
            raise StorageError("champion cannot be cleared: roll back or promote another version")
        with self._swap(alias, expected) as (data, current):
            if alias in WEIGHTED and float(data["weights"].get(alias, 0.0)) != 0.0:
                old = float(data["weights"][alias])
                weight_event = self._event(data, alias, old, 0.0, reason, actor, "weight")
                weight_event["version"] = current
                data["weights"][alias] = 0.0
            event = self._event(data, alias, current, None, reason, actor, "clear")
            data["aliases"].pop(alias, None)
            write_json_atomic(self.home.registry_file, data, "registry")
            return event

    def promote(
        self,
        version: str,
        *,
        reason: str,
        actor: str = "loopwright",
        task: str | None = None,
        classes: Sequence[str] | None = None,
    ) -> dict:
        """Make `version` champion by an explicit decision (a person's, when the gate could
        not judge); return the history event.

        Refused: a version of another task or class list (it would serve wrong answers), a
        corrupted one (its sha256 is checked by loading it), the current champion. The move
        is a compare-and-swap against the champion read here, so a concurrent move wins
        and this one raises `AliasConflict` instead of silently undoing it.
        """
        self._check_reason(reason, actor)
        meta = self.meta(version)
        if task is not None and meta.get("task") != task:
            raise StorageError(
                f"model {version} is a {meta.get('task')!r} model and the configured task is "
                f"{task!r}: promote a version trained for {task!r} (see loopwright status)"
            )
        if classes is not None and list(meta.get("classes") or []) != [str(c) for c in classes]:
            raise StorageError(
                f"model {version} predicts classes {meta.get('classes')}, the task has "
                f"{list(classes)}: promote a version trained on this task's classes"
            )
        self.load(version)  # a corrupted model is never promoted
        current = self.aliases().get("champion")
        if current == version:
            raise StorageError(f"model {version} is already champion: nothing to promote")
        return self.set_alias("champion", version, reason=reason, actor=actor, expected=current)

    @staticmethod
    def _previous_champion(history: list[dict]) -> str | None:
        """Replay champion moves as a stack: a move pushes where it came from, a rollback pops.
        Repeated rollbacks therefore walk further back instead of toggling."""
        stack: list[str] = []
        for event in history:
            if event.get("alias") != "champion":
                continue
            if event.get("kind") == "rollback":
                if stack:
                    stack.pop()
            elif event.get("from") is not None and event["from"] != event["to"]:
                stack.append(event["from"])
        return stack[-1] if stack else None

    def rollback(self, *, reason: str, actor: str = "loopwright") -> str:
        """Move champion back to the version it served before its last move; return it."""
        self._check_reason(reason, actor)
        with self._lock():
            data = self._read()
            target = self._previous_champion(data["history"])
            if target is None:
                raise StorageError(
                    "champion has no earlier version to roll back to: promote another version "
                    "with set_alias('champion', ...)"
                )
            if not self.exists(target):
                raise StorageError(
                    f"cannot roll back champion to {target}: {self.home.models / target} is missing"
                )
            self._move(data, "champion", target, reason, actor, "rollback")
        return target
