"""The persisted rollout: one winner when two start at once, the same step after a reload,
compare-and-swap on the rollout id, finished rollouts kept."""

from __future__ import annotations

import threading

import pytest

from storage.home import DataHome, StorageError
from storage.registry import Registry
from storage.rollout_state import (
    RolloutConflict,
    begin,
    current_rollout,
    read_rollouts,
    reconcile,
    rollout_file,
    summary,
    update,
)
from tests.rollout_support import make_loop

STEPS = (0.05, 0.25, 0.5, 1.0)


def _begin(reg: Registry, candidate: str = "v0002", champion: str = "v0001") -> dict:
    return begin(reg, candidate=candidate, champion=champion, mode="canary", steps=STEPS,
                 weight=0.05, actor="test", reason="test rollout")  # fmt: skip


@pytest.fixture
def reg(tmp_path) -> Registry:
    return make_loop(tmp_path / "home").registry


def test_begin_sets_the_canary_and_a_second_begin_is_refused(reg):
    state = _begin(reg)
    assert (state["candidate"], state["weight"], state["step_index"], state["state"]) == (
        "v0002", 0.05, 0, "running",
    )  # fmt: skip
    assert reg.aliases()["canary"] == "v0002" and reg.weight("canary") == 0.05
    before = (rollout_file(reg.home).read_bytes(), reg.home.registry_file.read_bytes())
    with pytest.raises(RolloutConflict, match=r"rollout r-\w+ of v0002 is running: finish it"):
        _begin(reg)
    assert (rollout_file(reg.home).read_bytes(), reg.home.registry_file.read_bytes()) == before


def test_two_threads_starting_at_once_give_one_winner(reg):
    results, barrier = [], threading.Barrier(2)

    def go():
        barrier.wait()
        try:
            results.append(("won", _begin(Registry(reg.home))["id"]))
        except RolloutConflict as exc:
            results.append(("lost", str(exc)))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == ["lost", "won"]
    winner = next(r[1] for r in results if r[0] == "won")
    assert current_rollout(reg.home)["id"] == winner
    weights = [e for e in reg.history() if e["kind"] == "weight"]
    assert [(e["from"], e["to"]) for e in weights] == [(0.0, 0.05)]


def test_stale_champion_and_unknown_candidate_are_refused(reg):
    with pytest.raises(RolloutConflict, match="champion is v0001, expected v0002"):
        _begin(reg, candidate="v0001", champion="v0002")
    with pytest.raises(StorageError, match="model v0009 does not exist"):
        _begin(reg, candidate="v0009")
    with pytest.raises(StorageError, match="v0001 is already champion"):
        _begin(reg, candidate="v0001")
    assert current_rollout(reg.home) is None and reg.aliases().get("canary") is None


def test_state_survives_a_reload_and_updates_are_cas_on_the_id(reg):
    state = _begin(reg)
    update(reg, state["id"], lambda s: {**s, "step_index": 2, "weight": 0.5, "holds": 1})
    again = current_rollout(DataHome(reg.home.root))  # a new reader, as after a restart
    assert (again["step_index"], again["weight"], again["holds"]) == (2, 0.5, 1)
    with pytest.raises(RolloutConflict, match="r-nope is not the current rollout"):
        update(reg, "r-nope", lambda s: s)
    with pytest.raises(StorageError, match="rollout state 'weird' is not one of"):
        update(reg, state["id"], lambda s: {**s, "state": "weird"})
    assert current_rollout(reg.home)["state"] == "running"


def test_finished_rollouts_move_to_the_history(reg):
    state = _begin(reg)
    done = update(reg, state["id"], lambda s: {**s, "state": "rolled_back", "weight": 0.0})
    data = read_rollouts(reg.home)
    assert data["current"] is None and [h["id"] for h in data["history"]] == [state["id"]]
    assert done["finished"] and summary(done)["outcome"] == "rolled_back"
    second = _begin(reg)  # a finished rollout no longer blocks a new one
    assert second["id"] != state["id"]


def test_reconcile_reapplies_the_state_weight_after_a_crash(reg):
    state = _begin(reg)
    update(reg, state["id"], lambda s: {**s, "step_index": 1, "weight": 0.25})
    # a crash after the state write, before the registry write: the registry says 0.05
    assert reg.weight("canary") == 0.05
    assert reconcile(reg, current_rollout(reg.home)) is True
    assert reg.weight("canary") == 0.25
    assert reconcile(reg, current_rollout(reg.home)) is False


def test_unreadable_state_names_the_file_and_the_fix(reg):
    rollout_file(reg.home).write_text("{not json")
    with pytest.raises(StorageError, match=r"rollout.json is not valid JSON .*restore it"):
        read_rollouts(reg.home)
