"""Faults 5 and 6: promotions racing in separate processes (exactly one wins, the history
replays to the aliases), rollback in one step, and model files that must not load: corrupted
(refused by sha256, naming the version), pickles of anything but tensors (weights_only), and
version names that escape the models folder. Plus: a registration killed at random moments
never leaves a half-written version visible."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest
import torch

from storage.home import DataHome, StorageError
from storage.registry import Registry
from tests.reliability.helpers import spawn, wait_ready

CLASSES = [str(i) for i in range(10)]
META = {"task": "digits", "classes": CLASSES}


def weights(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(4, 3, generator=g), "b": torch.zeros(4)}


def assert_history_consistent(reg: Registry) -> None:
    """Replaying the history from nothing gives the aliases; every move starts where the
    previous one of its alias ended; sequence numbers have no gap."""
    history = reg.history()
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    replay: dict[str, str] = {}
    for e in history:
        assert e["from"] == replay.get(e["alias"]), e
        replay[e["alias"]] = e["to"]
    assert replay == reg.aliases()


@pytest.fixture
def reg(tmp_path) -> Registry:
    r = Registry(DataHome(tmp_path / "home").ensure())
    for i in range(1, 7):
        r.register(weights(i), META)
    r.set_alias("champion", "v0001", reason="first")
    return r


def race(reg: Registry, tmp_path, contenders: list[tuple[str, ...]], tag: str) -> list[str]:
    go = tmp_path / f"go-{tag}"
    procs = [spawn(kind, reg.home.root, *args, go) for kind, *args in contenders]
    for p in procs:
        wait_ready(p)
    go.touch()
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        outs.append(out.strip())
    return outs


@pytest.mark.slow
def test_racing_promotions_exactly_one_wins(reg, tmp_path, record_property):
    rounds = 4
    for r in range(rounds):
        current = reg.get("champion")
        others = [v for v in reg.versions() if v != current][:3]
        before = len(reg.history())
        outs = race(reg, tmp_path, [("promote", v, current) for v in others], str(r))
        assert sorted(outs) == ["LOST", "LOST", "WON"], outs
        winner = others[outs.index("WON")]
        assert reg.get("champion") == winner
        new = reg.history()[before:]
        assert len(new) == 1 and new[0]["from"] == current and new[0]["to"] == winner
        assert_history_consistent(reg)
    # a rollback racing a promotion: both apply, in some order, and the history replays
    current = reg.get("champion")
    target = next(v for v in reg.versions() if v != current)
    outs = race(reg, tmp_path, [("rollback",), ("promote", target, current)], "rb")
    assert outs[0].startswith("ROLLED ")
    assert_history_consistent(reg)
    record_property("promotion_races", rounds + 1)


def test_rollback_restores_previous_champion_in_one_step(reg):
    reg.set_alias("champion", "v0002", reason="promote", expected="v0001")
    reg.set_alias("champion", "v0003", reason="promote", expected="v0002")
    before = reg.history()
    assert reg.rollback(reason="bad v0003") == "v0002"
    after = reg.history()
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert after[-1] | {"ts": None} == {
        "seq": len(after),
        "ts": None,
        "alias": "champion",
        "from": "v0003",
        "to": "v0002",
        "reason": "bad v0003",
        "actor": "loopwright",
        "kind": "rollback",
    }
    assert reg.get("champion") == "v0002"
    assert reg.rollback(reason="again") == "v0001"  # walks back, does not toggle
    assert_history_consistent(reg)


def test_corrupted_weights_refused_naming_the_version(reg):
    path = reg.home.models / "v0002" / "weights.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"model v0002 is corrupted: weights.pt sha256"):
        reg.load("v0002")
    path.write_bytes(bytes(data[:-100]))  # truncated
    with pytest.raises(StorageError, match=r"model v0002 is corrupted"):
        reg.load("v0002")
    assert reg.load("v0001")[1]["version"] == "v0001"


class Payload:
    """Runs `os.mkdir(marker)` when unpickled by a loader that executes arbitrary code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def test_weights_that_are_not_tensors_never_run(reg, tmp_path):
    """A weights file holding code (with a matching sha256, as an attacker who can write both
    files would leave it) is refused without running: torch.load(weights_only=True)."""
    import hashlib

    marker = tmp_path / "pwned"
    folder = reg.home.models / "v0003"
    torch.save({"w": Payload(str(marker))}, folder / "weights.pt")
    meta = json.loads((folder / "meta.json").read_text())
    meta["sha256"] = hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StorageError, match=r"model v0003 is refused: weights.pt holds objects"):
        reg.load("v0003")
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "../outside",
        "v0001/../../outside",
        "/etc/passwd",
        "..",
        "v0001/..",
        "v0001/",
        "v0001\n",
        "v0001\x00",
    ],
)
def test_version_names_cannot_escape_the_models_folder(reg, tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    torch.save(weights(9), outside / "weights.pt")
    (outside / "meta.json").write_text(json.dumps({**META, "sha256": "x"}))
    for call in (reg.load, reg.meta, reg.exists):
        with pytest.raises(StorageError, match="is not a version name"):
            call(name)
    with pytest.raises(StorageError, match="is not a version name"):
        reg.set_alias("champion", name, reason="escape")
    # an alias written into registry.json by hand is checked on read as well
    data = json.loads(reg.home.registry_file.read_text())
    data["aliases"]["shadow"] = name
    reg.home.registry_file.write_text(json.dumps(data))
    with pytest.raises(StorageError, match="is not a version name"):
        reg.get("shadow")


@pytest.mark.slow
def test_sigkill_during_registration_never_shows_a_half_version(tmp_path, record_property):
    rng = random.Random(7)
    home = DataHome(tmp_path / "home").ensure()
    reg = Registry(home)
    acked: list[str] = []
    rounds = 3
    for trial in range(rounds):  # two registering processes per round, killed apart
        procs = [spawn("register", home.root, 10 * trial + w) for w in range(2)]
        for p in procs:
            wait_ready(p)
        for p in procs:
            time.sleep(rng.uniform(0.02, 0.4))
            p.send_signal(signal.SIGKILL)
        for p in procs:
            acked += [line.split()[1] for line in p.stdout.read().splitlines()]
            p.wait()
            p.stdout.close()
        visible = reg.versions()
        assert set(acked) <= set(visible)
        for version in visible:  # every visible version is whole: it loads, checksum and all
            state, meta = reg.load(version)
            assert meta["version"] == version and set(state) == {"w", "b"}
        home.ensure()  # the next open removes the dead registrations' temp folders
        assert [p.name for p in home.models.iterdir() if p.name.startswith(".")] == []
    record_property("registration_kills", 2 * rounds)
    record_property("versions_checked", len(reg.versions()))
