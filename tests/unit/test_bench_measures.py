"""The benchmark's honest measures (issues 12 and 13, "Measure"): exact values on hand-made
runs, and the promotion accounting of a job (a rollout reaching 100 % is a promotion)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import bench_metrics as bm


def test_paired_p_worse_is_the_exact_one_sided_binomial_tail():
    assert bm.paired_p_worse(5, 0) == 1 / 32
    assert bm.paired_p_worse(0, 5) == 1.0
    assert bm.paired_p_worse(3, 3) == 42 / 64  # C(6,3)+C(6,4)+C(6,5)+C(6,6) = 20+15+6+1
    assert bm.paired_p_worse(12, 3) == 576 / 32768  # 455+105+15+1 over 2^15
    assert bm.paired_p_worse(0, 0) == 1.0  # no discordant image: no evidence
    # large counts stay exact (integer arithmetic, no overflow)
    assert bm.paired_p_worse(600, 400) < 1e-9 < bm.paired_p_worse(520, 480) < 0.11


def test_paired_p_worse_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(1, 0), (7, 2), (26, 14), (13, 135), (40, 40), (9, 31)]:
        want = stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue
        assert bm.paired_p_worse(b, c) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("b, c", [(-1, 2), (1.5, 2), (True, 2), (2, "3")])
def test_paired_p_worse_refuses_what_is_no_count(b, c):
    with pytest.raises(ValueError, match="count of discordant images"):
        bm.paired_p_worse(b, c)


def test_harmful_promotion_needs_the_drop_and_its_significance():
    # 1500 images, 0.9 -> 0.894 is 9 images net: significant when the models disagree
    # on few images (12 vs 3), chance when they disagree on many (60 vs 51)
    assert bm.harmful_promotion(0.90, 0.894, b=12, c=3)
    assert not bm.harmful_promotion(0.90, 0.894, b=60, c=51)
    # significant but a drop of 0.4 point only: not harm by the 0.5-point rule
    assert not bm.harmful_promotion(0.90, 0.896, b=6, c=0)
    # the old rule alone counts both
    assert bm.harmful(0.90, 0.894)
    with pytest.raises(ValueError, match="alpha"):
        bm.harmful_promotion(0.9, 0.8, 10, 0, alpha=0.0)


def test_stable_batches_on_the_shipped_rotation_ramp():
    from flows.bench_summary import stable_of
    from retrain.digits.scenario import find_scenario, load_scenario

    sc = load_scenario(find_scenario("rotation-ramp"))  # 5 clean, 10 ramp 0->35, 15 at 35
    assert stable_of(sc) == [True] * 5 + [False] * 10 + [True] * 15
    assert bm.stable_batches([0, 0, 1], [(0,), (0,), (5,)]) == [True, True, True]
    assert bm.stable_batches([0, 1, 1], [0, 1, 2]) == [True, False, False]
    with pytest.raises(ValueError, match="one of each per batch"):
        bm.stable_batches([0, 1], [0])


def test_retrains_after_recovery_counts_stable_batches_from_recovery():
    stable = [True] * 5 + [False] * 10 + [True] * 15
    retrains = [6, 9, 14, 15, 16, 20, 29]
    # recovered at batch 12: stable batches 15..29 (15 of them), retrains 15, 16, 20, 29
    assert bm.retrains_after_recovery(retrains, stable, 12) == pytest.approx(40 / 15)
    # recovered at 20: batches 20..29, retrains 20 and 29
    assert bm.retrains_after_recovery(retrains, stable, 20) == 2.0
    assert bm.retrains_after_recovery(retrains, stable, None) is None  # never recovered
    assert bm.retrains_after_recovery(retrains, [True] * 5 + [False] * 25, 6) is None
    assert bm.retrains_after_recovery([], stable, 12) == 0.0


def test_triggers_per_100_on_no_drift_only():
    assert bm.triggers_per_100([3, 40, 90], 120, onset=None) == 2.5
    assert bm.triggers_per_100([], 120, onset=None) == 0.0
    assert bm.triggers_per_100([3], 30, onset=6) is None
    with pytest.raises(ValueError, match="n_batches"):
        bm.triggers_per_100([], 0, onset=None)


def test_estimate_mae_in_points_and_null_without_estimates():
    acc = [0.5, 0.875, 0.5, 0.75]
    assert bm.estimate_mae([None, 0.75, 0.5, 0.5], acc) == pytest.approx((12.5 + 0 + 25) / 3)
    assert bm.estimate_mae([None] * 4, acc) is None  # null, never 0
    with pytest.raises(ValueError, match="one per batch"):
        bm.estimate_mae([0.5], acc)


def _run(promotions, **kw) -> dict:
    n = 10
    run = {
        "kind": "loop-uncertainty",
        "accuracy": [0.9] * 2 + [0.5, 0.6] + [0.9] * 6,
        "heldout_accuracy": [0.9] * n,
        "labels_spent": 100,
        "trigger_batches": [2, 3, 4, 8],
        "retrain_batches": [2, 3, 4, 8],
        "promotions": promotions,
        "degraded": [],
        "rounds": [{"batch": i, "estimate": None} for i in range(n)],
    }
    return {**run, **kw}


def test_run_metrics_of_a_hand_made_run():
    from flows.bench_summary import _run_metrics

    oracle = {"accuracy": [0.9] * 10, "heldout_accuracy": [0.9] * 10, "labels_spent": 2000}
    promos = [
        {"heldout_before": 0.90, "heldout_after": 0.894, "delta": -0.006, "b": 12, "c": 3},
        {"heldout_before": 0.90, "heldout_after": 0.894, "delta": -0.006, "b": 60, "c": 51},
        {"heldout_before": 0.80, "heldout_after": 0.90, "delta": 0.1, "b": 5, "c": 155},
    ]
    stable = [True, True] + [False] * 3 + [True] * 5  # phases: clean, ramp 2..4, hold 5..9
    rounds = [{"batch": i, "estimate": 0.85 if i >= 5 else None} for i in range(10)]
    m = _run_metrics(_run(promos, rounds=rounds), oracle, onset=2, n=10, stable=stable)
    assert m["harmful_promotions"] == 1
    assert m["drops_over_half_point"] == 2
    assert m["n_promotions"] == 3 and m["labels_spent"] == 100
    # rolling-3 from onset 2: .5 .55 .667 .8 .9 .9 ...: within 3 points from batch 6
    assert m["batches_to_recover"] == 4
    # recovered at batch 6: stable batches 6..9, one retrain (8): 10 * 1 / 4
    assert m["retrains_after_recovery"] == 2.5
    assert m["triggers"] is None  # a drifting scenario
    assert m["detection_delay"] == 0
    assert m["estimate_mae"] == pytest.approx(5.0)
    # runs from before the paired counts: harm unknown (not 0), the old count still there
    old = [{k: v for k, v in p.items() if k not in ("b", "c")} for p in promos]
    m = _run_metrics(_run(old), oracle, onset=None, n=10, stable=stable)
    assert m["harmful_promotions"] is None and m["drops_over_half_point"] == 2
    assert m["triggers"] == 40.0 and m["retrains_after_recovery"] is None
    assert m["estimate_mae"] is None


def test_medians_under_the_issues_names():
    from flows.bench_policies import Policy
    from flows.bench_summary import summarise
    from flows.config import load_config

    cfg = load_config(None)  # summarise reads the scenario through the config's task

    runs = []
    for seed, harm_b in ((1, 12), (2, 60), (3, 12)):
        for pol in ("oracle", "loop-uncertainty@10"):
            r = _run(
                [{"heldout_before": 0.9, "heldout_after": 0.894, "delta": -0.006, "b": harm_b,
                  "c": 3 if harm_b == 12 else 51}],
                policy=pol, seed=seed, kind=pol.split("@")[0],
                budget=10 if "@" in pol else None, overrides={}, phases=[0] * 4,
                labels_cumulative=[0, 1, 2, 3], heldout_rows=1500, seconds=1.0,
                budget_per_batch=50,
            )  # fmt: skip
            r["accuracy"] = r["accuracy"][:4]
            r["heldout_accuracy"] = r["heldout_accuracy"][:4]
            r["rounds"] = r["rounds"][:4]
            r["trigger_batches"] = r["retrain_batches"] = [2, 3]
            runs.append(r)
    policies = [Policy("oracle", None), Policy("loop-uncertainty", 10)]
    doc = summarise("scenarios/tiny.toml", [1, 2, 3], policies, cfg, runs, 1.0, "t", [1])
    med = doc["policies"]["loop-uncertainty@10"]["median"]
    names = ("auc", "labels", "promotions", "harmful_promotions", "retrains_after_recovery")
    assert set(names) | {"triggers", "detection_delay", "estimate_mae"} <= set(med)
    assert med["harmful_promotions"] == 1.0  # seeds: 1, 0, 1
    assert med["promotions"] == 1.0 and med["labels"] == 100.0
    assert med["estimate_mae"] is None and med["triggers"] is None
    assert doc["scenario"]["stable"] == [True] * 4  # tiny: 1 clean, then 3 at 45 degrees
    # as good as the oracle from onset (batch 1): retrains 2, 3 in stable batches 1..3
    assert med["retrains_after_recovery"] == pytest.approx(20 / 3)
    assert doc["goals"]["harmful_promotions_loop_uncertainty"] == {
        "measured": 2,
        "goal": "0",
        "met": False,
    }


class _Registry:
    def __init__(self):
        self.champion = "m1"

    def get(self, alias):
        assert alias == "champion"
        return self.champion

    def meta(self, version):
        return {"train": {"seconds": 1.5}}


#: per model: its predicted class for held-out rows 0..3 (truth 0, 1, 0, 1)
MODELS = {"m1": [0, 0, 0, 0], "m2": [1, 1, 0, 1], "m3": [0, 1, 0, 1]}


class _Loop:
    def __init__(self):
        from types import SimpleNamespace

        self.registry = _Registry()
        self.cfg = SimpleNamespace(
            demo=SimpleNamespace(feedback_share=0.0),
            curation=SimpleNamespace(strategy="margin", budget_per_batch=10),
        )

    def predictor(self, version):
        return lambda x: np.eye(2)[np.asarray(MODELS[version])[np.asarray(x, dtype=int)]]

    served_predictor = predictor  # no label-shift correction in this world

    def decode_inputs(self, inputs):
        return np.asarray(inputs)


class _World:
    n_batches = 3
    truth: dict = {}

    def table(self, i):
        import pyarrow as pa

        return pa.table({"input": [0, 1, 2, 3], "request_id": [f"r{i}-{k}" for k in range(4)]})

    def labels(self, i):
        return np.array([0, 1, 0, 1])

    def heldout(self, i):
        return np.arange(4), np.array([0, 1, 0, 1])

    def phase(self, i):
        return 0


def test_a_rollout_reaching_100_percent_is_a_promotion(monkeypatch):
    """Round 0 retrains and starts a rollout (no promotion yet, no refusal either); round 1
    the rollout promotes m2 (a round without retrain); round 2 the gate promotes m3 at once."""
    import flows.bench_run as br
    from flows.bench_policies import Policy
    from flows.loop.round import Round

    loop = _Loop()
    script = [
        (Round(0, True, "drift", True, False, 10, "started", 0.2), {"promoted": False}, None),
        (Round(1, False, None, False, True, 10, "advance", 0.0), {}, "m2"),
        (Round(2, True, "drift", True, True, 10, None, 0.0), {"promoted": True}, "m3"),
    ]

    def fake_round(stages, table, i, seed, feedback=()):
        from types import SimpleNamespace

        rnd, result, new = script[i]
        if new:
            loop.registry.champion = new
        return SimpleNamespace(round=rnd, retrain={"challenger": "x", "gate": None, **result})

    monkeypatch.setattr(br, "run_round", fake_round)
    monkeypatch.setattr(br, "simulated_feedback", lambda ids, truth, share: [])
    job = br.Job("s.toml", 1, Policy("loop-uncertainty", 10), None, "/tmp")
    run = br.observe(loop, _World(), job)
    assert run["retrain_batches"] == [0, 2]
    assert run["refusals"] == []  # the rollout's start is no refusal
    assert run["rollouts"] == [
        {"batch": 0, "decision": "started"},
        {"batch": 1, "decision": "advance"},
    ]
    # m1 right on rows 0, 2; m2 on 1, 2, 3: b = 1 (row 0), c = 2 (rows 1, 3)
    assert run["promotions"] == [
        {"batch": 1, "heldout_before": 0.5, "heldout_after": 0.75, "delta": 0.25, "b": 1,
         "c": 2, "via": "rollout", "reasons": []},
        {"batch": 2, "heldout_before": 0.75, "heldout_after": 1.0, "delta": 0.25, "b": 0,
         "c": 1, "via": "gate", "reasons": []},
    ]  # fmt: skip
    assert run["heldout_accuracy"] == [0.5, 0.5, 0.75]
    assert run["fit_seconds"] == 3.0


@pytest.mark.parametrize("module", ["evaluation.bench_metrics", "flows.bench_summary"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_runs_log_reads_back_policies_and_complete_seeds(tmp_path):
    import json

    from flows.bench_policies import Policy
    from flows.bench_summary import complete_seeds, policies_of, read_runs_log

    def rec(seed, kind, budget, tag):
        name = f"{kind}@{budget}" if budget is not None and kind != "static" else kind
        run = {"seed": seed, "policy": name, "kind": kind, "budget": budget, "overrides": {}}
        return json.dumps({"key": "k", "run": {**run, "tag": tag}})

    log = tmp_path / "r.runs.jsonl"
    lines = [
        rec(7, "oracle", None, 1),
        rec(7, "loop-uncertainty", 10, 1),
        rec(8, "oracle", None, 1),
    ]
    log.write_text("\n".join([*lines, rec(7, "oracle", None, 2)]) + "\n")
    runs = read_runs_log(log)
    assert sorted((r["seed"], r["policy"], r["tag"]) for r in runs) == [
        (7, "loop-uncertainty@10", 1),
        (7, "oracle", 2),  # the last record of a (seed, policy) wins, as on resume
        (8, "oracle", 1),
    ]
    pols = policies_of(runs)
    assert pols == [Policy("oracle", None), Policy("loop-uncertainty", 10)]
    assert complete_seeds(runs, pols) == [7]
    bad = [{"seed": 1, "policy": "loop-uncertainty@5", "kind": "loop-uncertainty", "budget": 10,
            "overrides": {}}]  # fmt: skip
    with pytest.raises(ValueError, match="reads back as 'loop-uncertainty@10'"):
        policies_of(bad)
