"""The rollout check's figures (`evaluation.rollout_outcomes`, `flows.bench_online`):
exact sums over hand-made rollout records."""

from __future__ import annotations

from evaluation.rollout_outcomes import (
    exposure,
    good_candidates_summary,
    live_worse_summary,
    rollback_weight,
)
from flows.bench_online import rows_before_phase
from flows.summary import canary_predictions


def rec(kind, outcome, decisions, weights=None, canary=0, served=0, batches=0, gap=None):
    return {
        "kind": kind,
        "outcome": outcome,
        "decisions": decisions,
        "weights": weights or [0.25] * len(decisions),
        "canary_predictions": canary,
        "served": served,
        "batches": batches,
        "heldout_gap": gap,
    }


def test_exposure_is_the_canarys_share_of_what_was_served_meanwhile():
    assert exposure(50, 200) == 0.25
    assert exposure(0, 0) is None


def test_rollback_weight_is_the_weight_of_the_rolling_back_analysis():
    r = rec("live-worse", "rolled_back", ["advance", "hold", "rollback"], [0.2, 0.5, 0.5])
    assert rollback_weight(r) == 0.5
    assert rollback_weight(rec("real", "promoted", ["advance"])) is None


def test_live_worse_summary_counts_rollbacks_weights_and_exposure():
    records = [
        rec("live-worse", "rolled_back", ["rollback"], [0.25], canary=50, served=200, batches=1),
        rec("live-worse", "rolled_back", ["hold", "rollback"], [0.25, 0.25], 100, 400, 2),
        rec("live-worse", "promoted", ["advance"], [0.25], 50, 200, 1),
        rec("real", "promoted", ["advance"], [0.25], 50, 200, 1, gap=0.1),  # not counted
    ]
    s = live_worse_summary(records)
    assert s["candidates"] == 3 and s["rolled_back"] == 2 and s["promoted"] == 1
    assert s["rollback_at_weight"] == {"25%": 2}
    assert s["batches_to_rollback"] == [1, 2]
    assert s["exposure_mean"] == 0.25 and s["exposure_max"] == 0.25
    assert s["canary_predictions_mean"] == 75


def test_live_worse_summary_of_nothing():
    s = live_worse_summary([])
    assert s["candidates"] == 0 and s["exposure_mean"] is None


def test_good_candidates_wrongly_stopped_and_their_batches_to_100():
    records = [
        rec("real", "promoted", ["hold", "advance"], batches=2, gap=0.2),
        rec("real", "promoted", ["advance"], batches=1, gap=0.05),
        rec("real", "rolled_back", ["rollback"], batches=1, gap=0.01),
        rec("real", "promoted", ["advance"], batches=1, gap=-0.03),  # not good
        rec("real", "running", ["hold"], batches=1, gap=None),  # unknown: not good
        rec("live-worse", "rolled_back", ["rollback"], gap=0.3),  # not a real candidate
    ]
    s = good_candidates_summary(records)
    assert s["real"] == 5 and s["good"] == 3
    assert s["promoted"] == 2 and s["wrongly_rolled_back"] == 1
    assert s["held_at_least_once"] == 1 and s["still_running"] == 0
    assert s["batches_to_100"] == [2, 1] and s["batches_to_100_median"] == 1.5
    assert s["not_good_promoted"] == 1
    assert good_candidates_summary(records, min_gap=0.1)["good"] == 1


def test_canary_predictions_count_each_step_once():
    steps = [
        {"weight": 0.25, "exposure": 40},  # hold: the same rows counted again below
        {"weight": 0.25, "exposure": 90},
        {"weight": 1.0, "exposure": None},
    ]
    assert canary_predictions(steps) == 90
    assert canary_predictions([]) == 0


def test_the_live_worse_candidate_keeps_the_seed_and_the_older_phases():
    phase_of = {"a": 0, "b": 1, "c": 2, "d": 2}
    assert rows_before_phase(["seed-1", "a", "b", "c", "d"], phase_of, 2) == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert rows_before_phase(["a", "b"], phase_of, 1) == [True, False]


def test_the_online_policy_is_the_configured_loop_with_rollouts_on():
    from flows.bench_policies import online, parse_policy, policy_config, select_policies

    assert parse_policy("online", 200) == online()
    assert [p.name for p in select_policies(200, [0.1], [1], ["online"])] == ["online"]
    assert "online" not in [p.name for p in select_policies(200, [0.1], [1])]  # opt-in
    cfg = policy_config(online())
    assert cfg.rollout.enabled is True and cfg.rollout.stats_url == "off"
    assert cfg.demo.feedback_share == 0.3
    # configured runs what `loopwright demo` runs, its feedback too; a label-budget policy none
    assert policy_config(parse_policy("configured", 200)).demo.feedback_share == 0.3
    assert policy_config(parse_policy("loop-uncertainty@20", 200)).demo.feedback_share == 0.0
