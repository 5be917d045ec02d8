"""The persisted rollout: which candidate is being rolled out, at which step and weight, and
every analysis so far; plus the finished rollouts.

Why under the registry lock: a rollout's state and the canary alias/weight must move
together. `begin` checks that no rollout runs, writes the new state and points the canary at
the candidate in one critical section of the registry's lock, so two rollouts started at once
give exactly one winner (the other gets `RolloutConflict`). The state is one JSON file
(`<home>/rollout.json`) replaced atomically (`storage.atomic`), so a restart reads the step
and weight the last finished write left, and resumes there.

Order of writes inside the lock (a crash between two of them leaves a safe state): the state
is written first, then the registry; `reconcile` (called by every step) re-applies the
state's weight to the registry when they differ. A rollback sets the weight to 0 before it
clears the canary alias, so traffic never goes to a model no state knows about.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.atomic import write_json_atomic
from storage.home import DataHome, StorageError
from storage.registry import Registry

ACTIVE = ("running", "paused")
FINISHED = ("promoted", "rolled_back", "aborted")
STATES = ACTIVE + FINISHED
MAX_HISTORY = 200  # finished rollouts kept in rollout.json (the registry history keeps all moves)


class RolloutConflict(StorageError):
    """A rollout is already active, or the state moved since the caller read it."""


def rollout_file(home: DataHome) -> Path:
    return home.root / "rollout.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def read_rollouts(home: DataHome) -> dict:
    """`{"current": state | None, "history": [finished states, oldest first]}`."""
    path = rollout_file(home)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"current": None, "history": []}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StorageError(
            f"{path} is not valid JSON ({err}): restore it from a backup, or remove it and "
            "clear the canary (loopwright rollout abort cannot read it either)"
        ) from None
    return {"current": data.get("current"), "history": list(data.get("history", []))}


def current_rollout(home: DataHome) -> dict | None:
    return read_rollouts(home)["current"]


def _write(home: DataHome, data: dict) -> None:
    write_json_atomic(rollout_file(home), data, "rollout state")


def begin(
    registry: Registry,
    *,
    candidate: str,
    champion: str,
    mode: str,
    steps: Sequence[float],
    weight: float,
    actor: str,
    reason: str,
    ts: str | None = None,
) -> dict:
    """Start a rollout of `candidate` against `champion`: state written, canary alias set to
    the candidate with `weight`. Raises `RolloutConflict` when a rollout is active or the
    champion moved meanwhile; nothing changes then."""
    if candidate == champion:
        raise StorageError(f"{candidate} is already champion: roll out another version")
    if not registry.exists(candidate):
        raise StorageError(
            f"model {candidate} does not exist: register it first ({registry.versions()})"
        )
    home = registry.home
    with registry.lock():
        data = read_rollouts(home)
        active = data["current"]
        if active is not None and active.get("state") in ACTIVE:
            raise RolloutConflict(
                f"rollout {active['id']} of {active['candidate']} is {active['state']}: "
                "finish it first (loopwright rollout abort, or wait for it to end)"
            )
        now_champion = registry.get("champion")
        if now_champion != champion:
            raise RolloutConflict(
                f"champion is {now_champion}, expected {champion}: it moved meanwhile; "
                "re-read it and decide again"
            )
        started = ts or _now()
        state = {
            "id": f"r-{uuid.uuid4().hex[:10]}",
            "candidate": candidate,
            "champion_at_start": champion,
            "mode": mode,
            "steps": [float(s) for s in steps],
            "step_index": 0,
            "weight": float(weight),
            "state": "running",
            "started": started,
            "step_started": started,
            "holds": 0,
            "analyses": [],
            "actor": actor,
            "updated": _now(),
            "outcome_reason": None,
        }
        if active is not None:  # a finished one left in `current`: move it to the history
            data["history"] = _trim([*data["history"], active])
        data["current"] = state
        _write(home, data)
        current_canary = registry.aliases().get("canary")
        if current_canary not in (None, candidate):
            registry.set_weight("canary", 0.0, reason=reason, actor=actor)
        if current_canary != candidate:
            registry.set_alias("canary", candidate, reason=reason, actor=actor)
        registry.set_weight("canary", weight, reason=reason, actor=actor)
        return state


def _trim(history: list[dict]) -> list[dict]:
    return history[-MAX_HISTORY:]


def update(
    registry: Registry,
    rollout_id: str,
    change: Callable[[dict], dict],
) -> dict:
    """Apply `change(state) -> new state` to the active rollout `rollout_id` under the lock
    (a compare-and-swap on the id: a rollout replaced meanwhile raises `RolloutConflict`).
    A new state in FINISHED moves to the history. `change` may move registry aliases: it
    runs inside the lock."""
    home = registry.home
    with registry.lock():
        data = read_rollouts(home)
        state = data["current"]
        if state is None or state.get("id") != rollout_id:
            raise RolloutConflict(
                f"rollout {rollout_id} is not the current rollout (now: "
                f"{None if state is None else state.get('id')}): re-read the status"
            )
        new = change(dict(state))
        new["updated"] = _now()
        if new.get("state") not in STATES:
            raise StorageError(f"rollout state {new.get('state')!r} is not one of {list(STATES)}")
        if new["state"] in FINISHED:
            new["finished"] = new.get("finished") or new["updated"]
            data["history"] = _trim([*data["history"], new])
            data["current"] = None
        else:
            data["current"] = new
        _write(home, data)
        return new


def reconcile(registry: Registry, state: dict, actor: str = "rollout") -> bool:
    """Make the registry's canary match an active state (after a crash between the state
    write and the registry write); True when something had to be re-applied."""
    if state.get("state") not in ACTIVE:
        return False
    with registry.lock():
        changed = False
        if registry.aliases().get("canary") != state["candidate"]:
            registry.set_alias(
                "canary", state["candidate"], reason="rollout state resumed", actor=actor
            )
            changed = True
        if registry.weight("canary") != float(state["weight"]):
            registry.set_weight(
                "canary", state["weight"], reason="rollout state resumed", actor=actor
            )
            changed = True
        return changed


def all_rollouts(home: DataHome) -> list[dict]:
    """Finished rollouts then the active one (oldest first): what `status` lists."""
    data = read_rollouts(home)
    out = list(data["history"])
    if data["current"] is not None:
        out.append(data["current"])
    return out


def summary(state: dict) -> dict[str, Any]:
    """One rollout as `status --json` shows it (issue 10's contract: candidate, outcome,
    steps with weight and decision)."""
    outcome = state["state"] if state["state"] in FINISHED else "running"
    return {
        "id": state["id"],
        "candidate": state["candidate"],
        "champion_at_start": state["champion_at_start"],
        "mode": state["mode"],
        "state": state["state"],
        "outcome": outcome,
        "weight": state["weight"],
        "started": state["started"],
        "finished": state.get("finished"),
        "reason": state.get("outcome_reason"),
        "steps": [
            {
                "weight": a["weight"],
                "decision": a["decision"],
                "reasons": a.get("reasons", []),
                "ts": a.get("ts"),
                "exposure": a.get("numbers", {}).get("canary_predictions"),
            }
            for a in state.get("analyses", [])
        ],
    }
