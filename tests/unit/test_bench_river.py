"""River's learners as the benchmark's stream-learning anchor: test-then-train on every label
of the job's world, the same run dict as the engine's jobs, and names that parse."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import flows.bench_river as bench_river
from flows.bench_policies import parse_policy
from flows.bench_river import accuracy, make_model, rows
from flows.bench_run import Job, run_job
from tests.support import WINE_LOOP_TABLES, write_config


def test_doctests():
    assert doctest.testmod(bench_river).failed == 0


def test_names_parse_and_take_no_budget():
    p = parse_policy("river-arf", 40)
    assert (p.name, p.kind, p.budget, p.gated) == ("river-arf", "river-arf", None, False)
    with pytest.raises(ValueError, match="river-hat takes no budget"):
        parse_policy("river-hat@5", 40)
    with pytest.raises(ValueError, match="not a River learner"):
        make_model("river-xgb", 0)


def test_accuracy_is_measured_before_the_rows_are_learned():
    model = make_model("river-hat", 0)
    xs = rows(np.array([[0.0], [1.0]]))
    assert accuracy(model, xs, np.array([0, 1])) == 0.0  # nothing learned: no prediction
    for _ in range(300):  # past the tree's grace period (200 rows)
        for x, y in zip(xs, (0, 1), strict=True):
            model.learn_one(x, y)
    assert accuracy(model, xs, np.array([0, 1])) == 1.0


def test_a_river_job_runs_on_the_world_every_label_learned(tmp_path):
    tables = {**WINE_LOOP_TABLES, "demo": {"holdout_rows": 40}}
    cfg = write_config(tmp_path / "lw.toml", tmp_path / "home", **tables)
    from retrain.task import load_task

    scenario = load_task("tests.wine_task:TASK").simulation().find_scenario("wine-shift")
    job = Job(str(scenario), 11, parse_policy("river-arf", 40), str(cfg), str(tmp_path))
    run = run_job(job)
    n = len(run["accuracy"])
    assert n == len(run["heldout_accuracy"]) == len(run["phases"]) > 2
    assert run["labels_cumulative"] == [40 * (i + 1) for i in range(n)]  # every row of each batch
    assert run["labels_spent"] == 40 * n and run["budget_per_batch"] == 40
    assert all(0.0 <= a <= 1.0 for a in run["accuracy"])
    assert np.mean(run["accuracy"]) > 0.5  # wine is learnable from its 60 seed rows and on
    assert run["promotions"] == run["trigger_batches"] == []
    again = run_job(job)
    assert again["accuracy"] == run["accuracy"]  # seeded: the same run twice
