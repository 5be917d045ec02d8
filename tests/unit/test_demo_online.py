"""The online demo's client side: what the simulator sends to /v1/predict must be the very
inputs the loop would have scored in process (same bytes logged, so same features and
predictions), or the demo and the benchmark could not decide alike."""

from __future__ import annotations

import json

import numpy as np

from flows.demo_online import json_inputs, online_capable
from retrain.task import load_task


def test_digits_json_form_re_encodes_to_the_same_bytes():
    task = load_task("retrain.digits.task:TASK", [])
    sim = task.simulation()
    scenario = sim.load_scenario(sim.find_scenario("tiny"))
    world = sim.world(scenario, 3, seed_rows=20, holdout_rows=10)
    table = world.table(2)  # rotated: pixels of every gray level
    inputs = table.column("input").to_pylist()
    sent = json.loads(json.dumps(json_inputs(task, inputs)))  # through JSON, as on the wire
    assert len(sent) == len(inputs) and all(len(v) == 64 for v in sent)
    assert min(min(v) for v in sent) >= 0 and max(max(v) for v in sent) <= 16
    back = [task.encode_input(np.asarray(task.parse_input(v), np.float32)) for v in sent]
    assert back == inputs
    assert online_capable(task, table)


def test_a_task_without_a_json_form_runs_offline():
    task = load_task("tests.wine_task:TASK", [])
    sim = task.simulation()
    scenario = sim.load_scenario(sim.find_scenario("wine-shift"))
    table = sim.world(scenario, 11, seed_rows=20, holdout_rows=10).table(0)
    assert json_inputs(task, table.column("input").to_pylist()[:1]) is None
    assert not online_capable(task, table)


def test_demo_turns_rollouts_on_only_for_itself(monkeypatch):
    """`[demo] rollout = true` reaches every stage's `load_config` through the environment,
    and only while the demo runs: the loop's own default stays direct promotion."""
    import os

    from flows.config import load_config
    from flows.demo_online import demo_environment, environment

    monkeypatch.delenv("LOOPWRIGHT_ROLLOUT__ENABLED", raising=False)
    cfg = load_config(overrides={"demo.rollout": True, "rollout.enabled": False})
    env = demo_environment(cfg)
    assert env == {
        "LOOPWRIGHT_ROLLOUT__ENABLED": "true",
        "LOOPWRIGHT_ROLLOUT__STEPS": "25.0,100.0",
        "LOOPWRIGHT_ROLLOUT__MIN_LABELS": "10",
        "LOOPWRIGHT_ROLLOUT__MIN_PREDICTIONS": "40",
    }
    with environment(env):
        inside = load_config().rollout
        assert inside.enabled is True and inside.steps == (25.0, 100.0)
        assert (inside.min_labels, inside.min_predictions) == (10, 40)
    assert not [k for k in os.environ if k.startswith("LOOPWRIGHT_ROLLOUT__")]
    assert load_config(overrides={"rollout.enabled": False}).rollout.enabled is False
    on = load_config(overrides={"demo.rollout": True, "rollout.enabled": True})
    assert demo_environment(on) == {}  # already on: nothing to add
    off = load_config(overrides={"demo.rollout": False, "rollout.enabled": False})
    assert demo_environment(off) == {}


def test_environment_restores_a_value_set_before_and_after_an_error(monkeypatch):
    import os

    import pytest

    from flows.demo_online import environment

    monkeypatch.setenv("LOOPWRIGHT_ROLLOUT__ENABLED", "false")
    with pytest.raises(RuntimeError), environment({"LOOPWRIGHT_ROLLOUT__ENABLED": "true"}):
        assert os.environ["LOOPWRIGHT_ROLLOUT__ENABLED"] == "true"
        raise RuntimeError("a stage failed")
    assert os.environ["LOOPWRIGHT_ROLLOUT__ENABLED"] == "false"


def test_demo_rollout_must_be_a_bool():
    import pytest

    from flows.config import DemoConfig, load_config

    with pytest.raises(ValueError, match=r"demo\.rollout .* must be true or false"):
        load_config(overrides={"demo.rollout": "yes"})
    with pytest.raises(ValueError, match=r"\[demo\] rollout = 1: use true or false"):
        DemoConfig(rollout=1)
    with pytest.raises(ValueError, match=r"\[demo\] rollout_steps = \[25.0, 50.0\] must"):
        DemoConfig(rollout_steps=(25.0, 50.0))  # never reaches 100: no promotion
    with pytest.raises(ValueError, match=r"\[demo\] rollout_min_labels"):
        DemoConfig(rollout_min_labels=0)


def test_shipped_config_rolls_the_demo_out_but_not_the_loop(monkeypatch):
    """What `make demo` runs: rollouts on for the demo (with users' feedback to judge the
    canary on), off as the loop's general default."""
    from pathlib import Path

    from flows.config import load_config

    for name in [k for k in __import__("os").environ if k.startswith("LOOPWRIGHT_")]:
        monkeypatch.delenv(name)
    shipped = Path(__file__).resolve().parents[2] / "loopwright.toml"
    cfg = load_config(shipped)
    assert cfg.demo.rollout is True and cfg.rollout.enabled is False
    assert cfg.demo.feedback_share > 0
    assert cfg.rollout.steps[-1] == 100.0
