"""Tabular scenarios: strict keys (named with their phase), deterministic streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrain.simulation import adopt_scenario_task, scenario_task, task_plugin
from retrain.tabular.scenario import ScenarioError, parse_scenario, sigmoid_share
from retrain.tabular.simulation import TabularSimulation
from retrain.tabular.streams import concept_fn

REPO = Path(__file__).resolve().parents[2]
BUNDLED = sorted((REPO / "scenarios").glob("tabular-*.toml"))


def doc(**phase2):
    return {
        "name": "t",
        "task": "tabular",
        "seed": 1,
        "batch_size": 30,
        "phase": [{"batches": 2, "concept": 0}, {"batches": 3, **phase2}],
    }


def test_five_bundled_scenarios_load_and_drift_after_their_first_phase():
    sim = TabularSimulation()
    names = {p.stem for p in BUNDLED}
    assert {"tabular-switch", "tabular-gradual", "tabular-recurring"} <= names
    assert {"tabular-covariate", "tabular-label-shift"} <= names
    for path in BUNDLED:
        sc = sim.load_scenario(path)
        assert sc.onset_batch == sc.phases[0].batches, path.name
        assert scenario_task(path) == "retrain.tabular.task:TASK"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (doc(concpt=2), "phase 2: unknown key 'concpt'"),
        (doc(concept=10), r"phase 2: concept = 10 must be a whole number 0\.\.9"),
        (doc(shift={"zip": 1}), "phase 2: shift.zip is not a numeric field"),
        (doc(class_prior=[1]), "phase 2: class_prior"),
        (doc(width=4), r"phase 2: width = 4 must be a whole number 0\.\.3"),
        (doc(attrs={"elevel": "x"}), "phase 2: attrs.elevel is reserved"),
        ({**doc(), "rotation": 3}, "unknown top-level key 'rotation'"),
        ({**doc(), "task": "digits"}, "task = 'digits'"),
    ],
)
def test_bad_keys_name_key_and_phase(data, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, "x.toml")


def test_same_file_and_seed_give_the_same_rows(tmp_path):
    sim = TabularSimulation()
    sc = parse_scenario(doc(concept=2, width=2, shift={"salary": 1000.0}))
    a, b = (
        sim.world(sc, 4, 50, 100),
        sim.world(parse_scenario(doc(concept=2, width=2, shift={"salary": 1000.0})), 4, 50, 100),
    )
    other = sim.world(sc, 5, 50, 100)
    for i in range(sc.n_batches):
        assert a.table(i).equals(b.table(i))
        np.testing.assert_array_equal(a.labels(i), b.labels(i))
    assert a.seed_examples == b.seed_examples
    assert not a.table(0).equals(other.table(0))
    np.testing.assert_array_equal(a.heldout(3)[0], b.heldout(3)[0])
    assert a.table(0)["request_id"][0].as_py() == "t-s4-b0000-r0000"


def test_labels_follow_rivers_concepts_and_shift():
    sim = TabularSimulation()
    sc = parse_scenario(doc(concept=2, shift={"salary": 40000.0}))
    w = sim.world(sc, 0, 20, 10)
    task_inputs = w.table(3)["input"].to_pylist()
    from retrain.tabular.schema import decode_record

    recs = [decode_record(b) for b in task_inputs]
    assert min(r["salary"] for r in recs) >= 60000  # moved by 40,000 from River's 20k..150k
    want = [concept_fn(2)(**r) for r in recs]
    assert w.labels(3).tolist() == want
    before = [decode_record(b) for b in w.table(0)["input"].to_pylist()]
    assert w.labels(0).tolist() == [concept_fn(0)(**r) for r in before]


def test_label_shift_gives_the_prior():
    sc = parse_scenario(doc(class_prior=[3, 1]))
    w = TabularSimulation().world(sc, 0, 20, 10)
    shifted = np.concatenate([w.labels(i) for i in range(2, 5)])
    assert (shifted == 0).mean() == pytest.approx(0.75, abs=0.1)
    assert (w.labels(0) == 0).mean() < 0.5  # concept 0 gives about one class_0 in three


def test_gradual_share_is_rivers_sigmoid():
    sc = parse_scenario(doc(concept=2, width=2))
    p = sc.params_at(2).p_new  # first batch of the transition: 60 rows, centred at row 30
    assert p[0] == pytest.approx(sigmoid_share(0, 30, 60))
    assert (
        sc.params_at(3).p_new[0] == pytest.approx(sigmoid_share(30, 30, 60)) == pytest.approx(0.5)
    )


def test_scenario_task_selects_the_plugin():
    assert task_plugin("digits") == "retrain.digits.task:TASK"
    with pytest.raises(ValueError, match="task = 'tabularr' is neither"):
        task_plugin("tabularr")
    env: dict[str, str] = {}
    path = REPO / "scenarios" / "tabular-switch.toml"
    note = adopt_scenario_task("retrain.digits.task:TASK", (), path, env)
    assert env == {"LOOPWRIGHT_TASK__PLUGIN": "retrain.tabular.task:TASK"} and "tabular" in note
    env2: dict[str, str] = {}
    assert adopt_scenario_task("retrain.tabular.task:TASK", (), path, env2) is None and not env2
    assert (
        adopt_scenario_task("tests.wine_task:TASK", (), REPO / "scenarios" / "tiny.toml", env2)
        is None
    )
    with pytest.raises(ValueError, match="remove task.classes"):
        adopt_scenario_task("retrain.digits.task:TASK", ("a", "b"), path, {})
