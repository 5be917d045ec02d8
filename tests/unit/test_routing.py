"""Traffic split: stable per key, monotone in the weight, share close to the weight; the
routing view follows registry moves and weight changes."""

from __future__ import annotations

import math

import pytest
import torch

from storage.home import DataHome, StorageError
from storage.registry import AliasConflict, Registry
from storage.routing import Routing, bucket, in_canary, read_routing

META = {"task": "digits", "classes": [str(i) for i in range(10)]}
KEYS = [f"req-{i}" for i in range(100_000)]


def test_bucket_is_the_blake2b_value_over_2_64():
    import hashlib

    raw = int.from_bytes(hashlib.blake2b(b"user-7", digest_size=8).digest(), "big")
    assert bucket("user-7") == raw / 2**64
    assert 0.0 <= bucket("user-7") < 1.0


def test_a_key_sticks_to_its_arm():
    first = [in_canary(k, 0.3) for k in KEYS[:2000]]
    again = [in_canary(k, 0.3) for k in KEYS[:2000]]
    assert first == again
    assert 0 < sum(first) < 2000


def test_raising_the_weight_only_adds_keys():
    steps = [0.0, 0.05, 0.25, 0.5, 1.0]
    members = [{k for k in KEYS[:20_000] if in_canary(k, w)} for w in steps]
    for lower, higher in zip(members, members[1:], strict=False):
        assert lower <= higher
    assert members[0] == set() and len(members[-1]) == 20_000


@pytest.mark.parametrize("weight", [0.05, 0.25, 0.5])
def test_share_is_close_to_the_weight_on_100k_keys(weight):
    share = sum(in_canary(k, weight) for k in KEYS) / len(KEYS)
    # 5 standard errors of a binomial share: a fair hash fails this with p < 1e-6
    bound = 5 * math.sqrt(weight * (1 - weight) / len(KEYS))
    assert abs(share - weight) < bound


def test_routing_follows_the_registry(tmp_path):
    home = DataHome(tmp_path / "home")
    assert read_routing(home) == Routing(None, None, 0.0, None, 0)
    reg = Registry(home)
    v1 = reg.register({"w": torch.zeros(2)}, META)
    v2 = reg.register({"w": torch.ones(2)}, META)
    reg.set_alias("champion", v1, reason="first", expected=None)
    with pytest.raises(StorageError, match="alias canary is not set"):
        reg.set_weight("canary", 0.05, reason="too early")
    reg.set_alias("canary", v2, reason="rollout start", expected=None)
    r = read_routing(home)
    assert (r.champion, r.canary, r.canary_weight, r.revision) == (v1, v2, 0.0, 2)
    event = reg.set_weight("canary", 0.05, reason="step 1", actor="rollout", expected=0.0)
    assert (event["kind"], event["from"], event["to"], event["version"]) == (
        "weight",
        0.0,
        0.05,
        v2,
    )
    r = read_routing(home)
    assert (r.canary_weight, r.revision) == (0.05, 3)
    assert r.role_for("x") == ("canary" if in_canary("x", 0.05) else "champion")
    with pytest.raises(AliasConflict, match="weight of canary is 0.05, expected 0.0"):
        reg.set_weight("canary", 0.25, reason="stale", expected=0.0)
    assert read_routing(home).revision == 3
    with pytest.raises(StorageError, match="outside"):
        reg.set_weight("canary", 1.5, reason="x")
    with pytest.raises(StorageError, match="carries no traffic weight"):
        reg.set_weight("shadow", 0.1, reason="x")
    reg.clear_alias("canary", reason="rolled back", actor="rollout", expected=v2)
    hist = reg.history()
    assert [(e["kind"], e["from"], e["to"]) for e in hist[-2:]] == [
        ("weight", 0.05, 0.0),
        ("clear", v2, None),
    ]
    r = read_routing(home)
    assert (r.champion, r.canary, r.canary_weight, r.revision) == (v1, None, 0.0, 5)
    assert reg.get("canary") is None and reg.weight("canary") == 0.0
    with pytest.raises(StorageError, match="champion cannot be cleared"):
        reg.clear_alias("champion", reason="x")


def test_nested_lock_in_one_thread_does_not_wait_on_itself(tmp_path):
    reg = Registry(DataHome(tmp_path / "home"))
    v1 = reg.register({"w": torch.zeros(2)}, META)
    with reg.lock(), Registry(reg.home).lock():
        reg.set_alias("champion", v1, reason="inside the lock", expected=None)
    assert reg.get("champion") == v1


def test_docstring_examples():
    import doctest

    import storage.routing

    result = doctest.testmod(storage.routing)
    assert result.attempted > 0 and result.failed == 0
