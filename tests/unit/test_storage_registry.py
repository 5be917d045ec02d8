"""Model registry: immutable versions checked on load, aliases moved by compare-and-swap."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import torch

from storage.home import DataHome, StorageError
from storage.registry import ALIASES, AliasConflict, Registry

META = {"task": "digits", "classes": [str(i) for i in range(10)], "dataset_version": "ds-0001"}


def weights(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(3, 2, generator=g), "b": torch.zeros(3)}


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(DataHome(tmp_path / "home"))


def test_register_load_roundtrip(reg):
    assert reg.versions() == []
    v1 = reg.register(weights(1), META)
    v2 = reg.register(weights(2), {**META, "parent": v1, "metrics": {"accuracy": 0.9}, "note": "x"})
    assert (v1, v2) == ("v0001", "v0002")
    assert reg.versions() == ["v0001", "v0002"]
    state, meta = reg.load(v2)
    assert torch.equal(state["w"], weights(2)["w"]) and torch.equal(state["b"], torch.zeros(3))
    assert meta["version"] == "v0002" and meta["parent"] == "v0001" and meta["note"] == "x"
    assert meta["metrics"] == {"accuracy": 0.9} and meta["classes"] == META["classes"]
    assert len(meta["sha256"]) == 64 and meta["created"]
    assert reg.meta(v1)["parent"] is None
    assert not any(p.name.startswith(".tmp-") for p in reg.home.models.iterdir())
    with pytest.raises(StorageError, match="meta has no 'classes'"):
        reg.register(weights(1), {"task": "digits"})


def test_corrupted_weights_refused_naming_the_version(reg):
    reg.register(weights(1), META)
    v = reg.register(weights(2), META)
    path = reg.home.models / v / "weights.pt"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        StorageError,
        match=r"model v0002 is corrupted: weights.pt sha256 .* != meta .*: restore it or roll back",
    ):
        reg.load(v)
    assert reg.load("v0001")[1]["version"] == "v0001"


@pytest.mark.parametrize("name", ["../x", "v1/../../etc", "champion", "", "v01"])
def test_names_that_are_not_versions_are_refused(reg, name):
    with pytest.raises(StorageError, match="is not a version name"):
        reg.load(name)


def test_set_alias_cas_conflict_changes_nothing(reg):
    v1, v2, v3 = (reg.register(weights(i), META) for i in range(3))
    reg.set_alias("champion", v1, reason="first model", expected=None)
    reg.set_alias("champion", v2, reason="better", expected=v1)
    before = (reg.aliases(), reg.history(), reg.home.registry_file.read_bytes())
    with pytest.raises(AliasConflict, match="alias champion points to v0002, expected v0001"):
        reg.set_alias("champion", v3, reason="stale decision", expected=v1)
    assert (reg.aliases(), reg.history(), reg.home.registry_file.read_bytes()) == before
    with pytest.raises(StorageError, match="model v0009 does not exist"):
        reg.set_alias("champion", "v0009", reason="x")
    with pytest.raises(StorageError, match="alias 'king' is unknown"):
        reg.set_alias("king", v1, reason="x")
    with pytest.raises(StorageError, match="reason is empty"):
        reg.set_alias("champion", v1, reason=" ")
    assert ALIASES == ("champion", "challenger", "shadow", "canary")


def test_history_order_and_rollback(reg):
    v1, v2, v3 = (reg.register(weights(i), META) for i in range(3))
    assert reg.get("champion") is None
    reg.set_alias("champion", v1, reason="seed model")
    reg.set_alias("challenger", v2, reason="candidate", actor="retrain")
    reg.set_alias("champion", v2, reason="gate passed", actor="gate")
    reg.set_alias("champion", v3, reason="gate passed", actor="gate")
    hist = reg.history()
    assert [e["seq"] for e in hist] == [1, 2, 3, 4]
    assert [(e["alias"], e["from"], e["to"]) for e in hist] == [
        ("champion", None, v1), ("challenger", None, v2), ("champion", v1, v2), ("champion", v2, v3),
    ]  # fmt: skip
    assert hist[1]["actor"] == "retrain" and hist[0]["actor"] == "loopwright"
    assert reg.rollback(reason="accuracy dropped", actor="ops") == v2
    assert reg.get("champion") == v2
    last = reg.history()[-1]
    assert (last["from"], last["to"], last["reason"], last["actor"]) == (
        v3,
        v2,
        "accuracy dropped",
        "ops",
    )
    assert reg.rollback(reason="still bad") == v1  # walks further back, does not toggle
    with pytest.raises(StorageError, match="no earlier version to roll back to"):
        reg.rollback(reason="again")
    assert reg.aliases() == {"champion": v1, "challenger": v2}


def test_get_on_missing_folder_is_a_clear_error(reg):
    import shutil

    v1 = reg.register(weights(1), META)
    reg.set_alias("shadow", v1, reason="try")
    shutil.rmtree(reg.home.models / v1)
    with pytest.raises(StorageError, match="alias shadow points to v0001, but .* is missing"):
        reg.get("shadow")


def _race(root, old, new, barrier, results):
    reg = Registry(DataHome(root))
    barrier.wait()
    try:
        reg.set_alias("champion", new, reason=f"promote {new}", expected=old)
        results.put(new)
    except AliasConflict:
        results.put("conflict")


def test_two_processes_racing_cas_exactly_one_wins(reg):
    v1, v2, v3 = (reg.register(weights(i), META) for i in range(3))
    reg.set_alias("champion", v1, reason="start")
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(reg.home.root, v1, v, barrier, results)) for v in (v2, v3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    outcome = sorted(results.get(timeout=5) for _ in procs)
    assert outcome.count("conflict") == 1
    winner = next(o for o in outcome if o != "conflict")
    assert reg.get("champion") == winner
    assert [e["to"] for e in reg.history()] == [v1, winner]
