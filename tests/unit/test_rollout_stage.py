"""The rollout stage on a temp home: synthetic traffic per arm and labels of known accuracy
drive advance, hold, rollback and promotion, through the registry's compare-and-swap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.loop import rollout
from storage.registry import Registry
from storage.rollout_state import RolloutConflict, current_rollout, read_rollouts
from storage.routing import read_routing
from tests.rollout_support import T0, both_arms, make_loop, serve

H = timedelta(hours=1)


@pytest.fixture
def loop(tmp_path):
    return make_loop(tmp_path / "home")


def step_at(loop, hours, **kw):
    return rollout.step(loop, now=T0 + timedelta(hours=hours), **kw)


def test_good_canary_walks_every_step_and_is_promoted_by_cas(loop):
    rollout.start(loop, "v0002", now=T0)
    decisions = []
    for i, weight in enumerate((0.05, 0.25, 0.5)):
        assert read_routing(loop.home).canary_weight == weight
        both_arms(loop, T0 + i * 2 * H + timedelta(seconds=1), f"s{i}", canary_acc=0.9,
                  champ_acc=0.9)  # fmt: skip
        out = step_at(loop, i * 2 + 1)
        decisions.append((out["analysis"]["weight"], out["analysis"]["decision"]))
    assert decisions == [(0.05, "advance"), (0.25, "advance"), (0.5, "advance")]
    reg = loop.registry
    assert reg.get("champion") == "v0002" and reg.get("canary") is None
    last = reg.history()[-3:]
    assert [(e["alias"], e["kind"], e["from"], e["to"]) for e in last] == [
        ("champion", "set", "v0001", "v0002"),
        ("canary", "weight", 0.5, 0.0),
        ("canary", "clear", "v0002", None),
    ]
    assert last[0]["reason"].startswith("rollout passed at 50%")
    status = rollout.status(loop.home)
    assert status["state"] == "idle" and status["history"][0]["outcome"] == "promoted"
    assert [s["decision"] for s in status["history"][0]["steps"]] == ["advance"] * 3
    # the window of each step holds only that step's rows: 100 per arm
    assert [s["exposure"] for s in status["history"][0]["steps"]] == [100, 100, 100]


def test_no_labels_holds_and_the_weight_stays(loop):
    rollout.start(loop, "v0002", now=T0)
    serve(loop, "canary", "v0002", 100, start=T0 + timedelta(seconds=1), prefix="c")
    serve(loop, "champion", "v0001", 100, start=T0 + timedelta(seconds=1), prefix="h")
    out = step_at(loop, 1)
    assert out["analysis"]["decision"] == "hold"
    assert out["analysis"]["reasons"][0].startswith("too few labels: canary 0, champion 0")
    assert loop.registry.weight("canary") == 0.05 and current_rollout(loop.home)["holds"] == 1


def test_uncertainty_labels_do_not_count(loop):
    rollout.start(loop, "v0002", now=T0)
    t = T0 + timedelta(seconds=1)
    serve(loop, "canary", "v0002", 100, start=t, prefix="c", labeled=40, source="uncertainty")
    serve(loop, "champion", "v0001", 100, start=t, prefix="h", labeled=40, source="audit")
    out = step_at(loop, 1)
    numbers = out["analysis"]["numbers"]
    assert (numbers["canary_labeled"], numbers["champion_labeled"]) == (0, 40)
    assert out["analysis"]["decision"] == "hold"


def test_worse_canary_is_rolled_back_champion_unchanged(loop):
    rollout.start(loop, "v0002", now=T0)
    both_arms(loop, T0 + timedelta(seconds=1), "s", canary_acc=0.55, champ_acc=0.95)
    out = step_at(loop, 1)
    assert out["analysis"]["decision"] == "rollback" and out["outcome"] == "rolled_back"
    reg = loop.registry
    assert reg.get("champion") == "v0001" and reg.get("canary") is None
    assert reg.weight("canary") == 0.0
    clear = reg.history()[-1]
    assert clear["kind"] == "clear" and clear["reason"].startswith(
        "rolled back at 5%: canary less accurate: 0.550 on 40 labels vs 0.950"
    )
    assert read_rollouts(loop.home)["history"][-1]["state"] == "rolled_back"
    assert rollout.step(loop, now=T0 + 2 * H)["note"] == "no active rollout"


def test_stats_port_raising_holds(loop):
    rollout.start(loop, "v0002", now=T0)
    both_arms(loop, T0 + timedelta(seconds=1), "s", canary_acc=0.9, champ_acc=0.9)

    def down(since):
        raise ConnectionError("server down")

    out = step_at(loop, 1, stats=down)
    assert out["analysis"]["decision"] == "hold"
    assert out["analysis"]["reasons"] == ["serving stats unavailable: ConnectionError: server down"]
    assert loop.registry.weight("canary") == 0.05


def test_stats_port_feeds_errors_and_latency(loop):
    rollout.start(loop, "v0002", now=T0)
    both_arms(loop, T0 + timedelta(seconds=1), "s", canary_acc=0.9, champ_acc=0.9)
    seen = []

    def stats(since):
        seen.append(since)
        return {"versions": {
            "v0002": {"role": "canary", "requests": 100, "errors": 9, "latency_ms": {"p99": 5}},
            "v0001": {"role": "champion", "requests": 100, "errors": 0, "latency_ms": {"p99": 5}},
        }}  # fmt: skip

    out = step_at(loop, 1, stats=stats)
    assert seen == [T0]
    assert out["analysis"]["decision"] == "rollback"
    assert out["analysis"]["numbers"]["canary_error_rate"] == 0.09


def test_pause_resume_abort(loop):
    reg = loop.registry
    rollout.start(loop, "v0002", now=T0)
    assert rollout.pause(reg, reason="looking at it")["state"] == "paused"
    both_arms(loop, T0 + timedelta(seconds=1), "s", canary_acc=0.9, champ_acc=0.9)
    out = step_at(loop, 1)
    assert out["analysis"] is None and out["note"] == "rollout is paused"
    assert reg.weight("canary") == 0.05
    assert rollout.resume(reg)["state"] == "running"
    assert step_at(loop, 1)["analysis"]["decision"] == "advance"
    aborted = rollout.abort(reg, reason="enough")
    assert aborted["state"] == "aborted" and aborted["outcome_reason"] == "enough"
    assert reg.get("canary") is None and reg.get("champion") == "v0001"
    with pytest.raises(RolloutConflict, match="no active rollout"):
        rollout.pause(reg)


def test_a_champion_moved_by_a_person_aborts_the_rollout(loop):
    rollout.start(loop, "v0002", now=T0)
    v3 = loop.registry.register({"w": __import__("torch").zeros(1)},
                                {"task": "digits", "classes": [str(i) for i in range(10)]})  # fmt: skip
    Registry(loop.home).set_alias("champion", v3, reason="a person decided")
    out = step_at(loop, 1)
    assert out["state"] == "aborted" and "champion moved to v0003" in out["reason"]
    assert loop.registry.get("champion") == v3 and loop.registry.get("canary") is None


def test_start_refuses_a_second_rollout_and_a_wrong_task(loop):
    rollout.start(loop, "v0002", now=T0)
    with pytest.raises(RolloutConflict, match="is running"):
        rollout.start(loop, "v0002", now=T0)
    rollout.abort(loop.registry)
    v3 = loop.registry.register({"w": __import__("torch").zeros(1)},
                                {"task": "wine", "classes": ["a", "b"]})  # fmt: skip
    with pytest.raises(ValueError, match="roll out a version of task 'digits'"):
        rollout.start(loop, v3, now=T0)


def test_retrain_branch_starts_a_rollout_instead_of_promoting(tmp_path):
    from flows.loop.retrain import promote_or_keep

    on = make_loop(tmp_path / "on", enabled=True)
    gate = {"promote": True, "reasons": ["better"]}
    out = promote_or_keep(on, "v0002", "v0001", gate)
    assert out["promoted"] is False and out["champion"] == "v0001" and out["rollout"]
    assert on.registry.get("canary") == "v0002" and on.registry.get("champion") == "v0001"
    again = promote_or_keep(on, "v0002", "v0001", gate)
    assert again["rollout"] is None and "is running" in again["conflict"]
    off = make_loop(tmp_path / "off")
    assert promote_or_keep(off, "v0002", "v0001", gate) == {"promoted": True, "champion": "v0002"}


def test_ab_mode_holds_a_fixed_split_until_the_test_decides(tmp_path):
    loop = make_loop(tmp_path / "ab", mode="ab", min_predictions=50)
    rollout.start(loop, "v0002", now=T0)
    assert loop.registry.weight("canary") == 0.5
    unlabeled = step_at(loop, 0.5)["analysis"]  # no label yet: stored (no NaN), holds
    assert unlabeled["decision"] == "hold" and unlabeled["numbers"]["ab_theta"] is None
    both_arms(loop, T0 + timedelta(seconds=1), "a", canary_acc=0.9, champ_acc=0.9, labeled=40)
    assert step_at(loop, 1)["analysis"]["decision"] == "hold"
    assert loop.registry.weight("canary") == 0.5
    both_arms(loop, T0 + 2 * H, "b", canary_acc=0.95, champ_acc=0.6, n=400, labeled=400)
    out = step_at(loop, 3)
    assert out["analysis"]["decision"] == "advance" and out["outcome"] == "promoted"
    assert loop.registry.get("champion") == "v0002"


def test_a_crash_after_the_promotion_write_finishes_as_promoted(loop):
    rollout.start(loop, "v0002", now=T0)
    # the champion CAS landed, the process died before the canary was cleared and the state
    # written: the next step completes the promotion instead of aborting it
    loop.registry.set_alias("champion", "v0002", reason="rollout passed", expected="v0001")
    out = step_at(loop, 1)
    assert (out["state"], out["outcome"]) == ("promoted", "promoted")
    assert loop.registry.get("canary") is None and loop.registry.get("champion") == "v0002"
