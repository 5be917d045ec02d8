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
