"""The engine runs the tabular task end to end (bench loop's job, in process) and recovers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.bench_policies import parse_policy
from flows.bench_run import Job, run_job

CONFIG = Path(__file__).resolve().parents[2] / "retrain" / "tabular" / "loopwright.toml"
SCENARIO = """
name = "tabular-tiny-switch"
task = "tabular"
seed = 3
batch_size = 100

[[phase]]
batches = 2
concept = 0

[[phase]]
batches = 6
concept = 2
"""


@pytest.mark.slow
def test_loop_beats_static_after_a_concept_switch(tmp_path):
    path = tmp_path / "tabular-tiny-switch.toml"
    path.write_text(SCENARIO)
    runs = {
        name: run_job(Job(str(path), 3, parse_policy(name, 100), str(CONFIG), str(tmp_path)))
        for name in ("static", "loop-uncertainty@40")
    }
    static, loop = runs["static"], runs["loop-uncertainty@40"]
    # before the switch both serve the first champion: same model, same accuracy
    assert static["heldout_accuracy"][:2] == loop["heldout_accuracy"][:2]
    assert min(static["heldout_accuracy"][:2]) > 0.85
    after_static = np.mean(static["heldout_accuracy"][-2:])
    after_loop = np.mean(loop["heldout_accuracy"][-2:])
    assert after_static < 0.6  # concept 2 disagrees with 0 on about half the applicants
    # measured 0.548 vs 0.481 (seed 3): a partial recovery, see the H5 report; the oracle
    # itself reaches only about 0.78 on tabular-switch with this loop config
    assert after_loop > after_static + 0.05, (loop["promotions"], loop["refusals"])
    assert loop["labels_spent"] > 0 and static["labels_spent"] == 0
