"""`loopwright bench loop` through the CLI as a user runs it, on the engine: one seed of
scenarios/tiny.toml under every policy (the JSON must hold every policy, field and round,
with sane values), `configured` with a periodic trigger only, and a task that is not digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import REPO, clean_env, run_loopwright, write_config

pytestmark = [pytest.mark.slow]

RUN_FIELDS = {
    "accuracy",
    "heldout_accuracy",
    "labels_cumulative",
    "labels_spent",
    "trigger_batches",
    "trigger_kinds",
    "retrain_batches",
    "promotions",
    "refusals",
    "degraded",
    "overrides",
    "auc",
    "heldout_auc",
    "auc_vs_oracle",
    "n_triggers",
    "n_retrains",
    "n_promotions",
    "false_triggers",
    "detection_delay",
    "batches_to_recover",
    "harmful_promotions",
    "degraded_promoted",
}
ROUND_FIELDS = {  # the Round contract (docs/contracts.md, "Rounds")
    "batch",
    "trigger_fired",
    "trigger_kind",
    "retrained",
    "promoted",
    "labels_added",
    "rollout_decision",
    "canary_weight",
    "estimate",
}


def bench(tmp_path: Path, *args: str, config: Path | None = None) -> dict:
    out = tmp_path / "r.json"
    cfg = ["--config", str(config)] if config else []
    proc = run_loopwright(
        "bench", "loop", "--seeds", "1", "--workers", "1", "--json", str(out), *cfg, *args,
        env=clean_env(PYTHONPATH=str(REPO)), timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "medians of 1 seeds" in proc.stdout
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    # small drift windows (100 rows, tiny's batches are 50): the loop's triggers can fire
    cfg = write_config(out / "lw.toml", out / "home")
    d = bench(
        out, "--scenario", "scenarios/tiny.toml", "--budgets", "0.1", "--multipliers", "1,2",
        "--degraded-checks", "1", "--plot", str(out / "r.png"), config=cfg,
    )  # fmt: skip
    assert (out / "r.png").stat().st_size > 10_000
    return d


def test_every_policy_with_every_field(doc):
    assert doc["schema"] == "loopwright.bench_loop/1"
    assert doc["seeds"] == [3]  # tiny.toml's own seed: the default first seed
    assert set(doc["policies"]) == {
        "configured",
        "static",
        "oracle",
        "periodic-random@5",
        "loop-uncertainty@5",
        "loop-random@5",
        "loop-random@10",
    }
    n = doc["scenario"]["n_batches"]
    assert [p["first_batch"] for p in doc["scenario"]["phases"]] == [0, 1]
    for name, pol in doc["policies"].items():
        assert len(pol["median"]["accuracy"]) == n, name
        (run,) = pol["seeds"]
        assert set(run) >= RUN_FIELDS, (name, RUN_FIELDS - set(run))
        assert run["overrides"] == pol["overrides"]
        assert len(run["accuracy"]) == len(run["heldout_accuracy"]) == n
        assert all(0.0 <= a <= 1.0 for a in run["accuracy"] + run["heldout_accuracy"])
    assert {(r["policy"], r["seed"]) for r in doc["runs"]} == {(p, 3) for p in doc["policies"]}
    for run in doc["runs"]:
        assert [r["batch"] for r in run["rounds"]] == list(range(n))
        assert all(set(r) == ROUND_FIELDS for r in run["rounds"])
        pol = doc["policies"][run["policy"]]["seeds"][0]
        assert sum(r["labels_added"] for r in run["rounds"]) == pol["labels_spent"]
        assert [r["batch"] for r in run["rounds"] if r["retrained"]] == pol["retrain_batches"]
    assert set(doc["efficiency"]["auc"]) == {"5"}
    assert {"degraded_refused", "no_harmful_promotion", "detection_delay"} <= set(doc["goals"])
    assert doc["settings"]["curation"]["budget_per_batch"] == 20  # the shipped toml
    assert doc["settings"]["labels"] == "in-process"


def test_values_are_sane(doc):
    p = doc["policies"]
    bs, n = doc["scenario"]["batch_size"], doc["scenario"]["n_batches"]
    static, oracle = p["static"]["seeds"][0], p["oracle"]["seeds"][0]
    assert static["labels_spent"] == 0 and static["n_retrains"] == 0 == static["n_triggers"]
    assert oracle["labels_spent"] == bs * n
    # every_rows = one batch: the oracle retrains after every batch and always promotes
    assert oracle["retrain_batches"] == list(range(n)) == [x["batch"] for x in oracle["promotions"]]
    assert set(oracle["trigger_kinds"]) == {"periodic"}
    assert p["loop-uncertainty@5"]["seeds"][0]["labels_spent"] == 5 * n
    assert p["configured"]["seeds"][0]["labels_spent"] == 20 * n  # [curation] budget_per_batch
    # tiny.toml: one clean batch, then 45 degrees; the static model suffers, the oracle adapts
    assert static["accuracy"][0] > 0.85 > max(static["accuracy"][1:])
    assert oracle["auc"] > static["auc"]
    assert oracle["auc_vs_oracle"] == pytest.approx(1.0)
    # all policies start from the same champion on the same stream
    assert len({pol["seeds"][0]["accuracy"][0] for pol in p.values()}) == 1
    assert len({pol["seeds"][0]["heldout_accuracy"][0] for pol in p.values()}) == 1
    # the loop's own triggers retrain; the shuffled-label challenger is refused
    lu = p["loop-uncertainty@5"]["seeds"][0]
    assert lu["retrain_batches"] and lu["detection_delay"] is not None
    assert len(lu["degraded"]) == 1 and not lu["degraded"][0]["promoted"]
    assert p["configured"]["seeds"][0]["degraded"] == []  # loop-uncertainty only


def test_configured_with_a_periodic_trigger_only(tmp_path):
    """`configured` is the loop as the config sets it: `every_rows` = one batch and every
    other rule off gives a periodic trigger after each batch (with the back-off off: it holds
    the schedule too after a refused retrain, docs/contracts.md "Back-off")."""
    cfg = write_config(
        tmp_path / "lw.toml",
        tmp_path / "home",
        trigger={"every_rows": 50, "on_performance": False, "on_confidence": False,
                 "on_drift": False, "recovery_drop": 0.0, "backoff": False},
    )  # fmt: skip
    d = bench(tmp_path, "--scenario", "scenarios/tiny.toml", "--policies", "configured", config=cfg)
    (run,) = d["runs"]
    assert run["policy"] == "configured" and run["overrides"] == {}
    assert [r["trigger_kind"] for r in run["rounds"]] == ["periodic"] * 4
    assert all(r["trigger_fired"] for r in run["rounds"])
    assert d["settings"]["trigger"]["every_rows"] == 50


def test_a_task_that_is_not_digits(tmp_path):
    """The benchmark takes traffic, truth and held-out sets from the task's simulation."""
    cfg = write_config(
        tmp_path / "lw.toml",
        tmp_path / "home",
        task={"plugin": "tests.wine_task:TASK"},
        retrain={"seed_rows": 60},
        demo={"holdout_rows": 40},
        curation={"budget_per_batch": 10},
        gate={"min_eval_rows": 10},  # 60 seed rows: about 12 eval rows for the first model
    )
    d = bench(
        tmp_path, "--scenario", "tests/scenarios/wine-shift.toml", "--policies", "configured",
        "--first-seed", "5", config=cfg,
    )  # fmt: skip
    (run,) = d["runs"]
    assert (run["policy"], run["seed"]) == ("configured", 5)
    assert [r["batch"] for r in run["rounds"]] == list(range(d["scenario"]["n_batches"]))
    assert sum(r["labels_added"] for r in run["rounds"]) == 10 * d["scenario"]["n_batches"]
    assert d["scenario"]["name"] == "wine-shift"
