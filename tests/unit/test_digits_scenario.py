"""Scenario files: the TOML contract, parsed strictly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from retrain.digits.scenario import (
    SCENARIOS_DIR,
    ScenarioError,
    find_scenario,
    load_scenario,
    parse_scenario,
)

VALID = {
    "name": "t",
    "seed": 7,
    "batch_size": 20,
    "phase": [
        {"batches": 2},
        {"batches": 5, "rotation": {"start": 0, "end": 40}, "attrs": {"device": "b"}},
        {"batches": 3, "rotation": 40, "class_prior": [1, 1, 1, 1, 1, 1, 1, 1, 3, 3]},
    ],
}


def test_valid_scenario_counts_batches_and_finds_onset() -> None:
    sc = parse_scenario(VALID)
    assert (sc.name, sc.seed, sc.batch_size, sc.n_batches) == ("t", 7, 20, 10)
    # the ramp starts at 0 (batch 2 is still clean), so drift starts at batch 3
    assert sc.onset_batch == 3
    assert [sc.params_at(i).rotation for i in range(2, 7)] == [0.0, 10.0, 20.0, 30.0, 40.0]
    p = sc.params_at(9)
    assert (p.phase, p.rotation, p.attrs) == (2, 40.0, {})
    assert p.class_prior[8] == pytest.approx(3 / 14)
    assert sc.params_at(3).attrs == {"device": "b"}


def test_no_drift_has_no_onset_and_attrs_alone_are_not_drift() -> None:
    sc = parse_scenario(
        {
            "name": "n",
            "seed": 0,
            "batch_size": 5,
            "phase": [{"batches": 3}, {"batches": 2, "attrs": {"device": "x"}}],
        }
    )
    assert sc.onset_batch is None
    assert sc.n_batches == 5


def test_params_at_outside_the_scenario_says_the_range() -> None:
    with pytest.raises(IndexError, match=r"batches 0\.\.9"):
        parse_scenario(VALID).params_at(10)


def _with(path: tuple, value: object) -> dict:
    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _without(path: tuple) -> dict:
    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


INVALID = [
    (
        _with(("phase", 0, "rotaton"), 30),
        r"phase 1: unknown key 'rotaton' \(known: batches, rotation",
    ),
    (
        _with(("phase", 1, "class_prior"), [1] * 9),
        r"phase 2: class_prior has 9 values, the task has 10 classes",
    ),
    (_with(("phase", 1, "class_prior"), [0] * 10), r"phase 2: class_prior is all zeros"),
    (_with(("phase", 1, "class_prior"), [1] * 9 + [-1]), r"phase 2: class_prior\[9\] = -1"),
    (_with(("phase", 1, "rotation"), {"start": 0}), r"phase 2: rotation ramp is missing 'end'"),
    (
        _with(("phase", 1, "rotation"), {"start": 0, "end": 1, "step": 2}),
        r"phase 2: rotation has unknown key 'step'",
    ),
    (_with(("phase", 2, "batches"), -1), r"phase 3: batches = -1 must be a whole number >= 1"),
    (_with(("phase", 2, "batches"), 0), r"phase 3: batches = 0"),
    (_without(("phase", 0, "batches")), r"phase 1: missing key 'batches'"),
    (_with(("phase", 0, "noise"), -0.1), r"phase 1: noise = -0.1 is outside 0\.\.1"),
    (_with(("phase", 0, "invert"), 1.5), r"phase 1: invert = 1.5 is outside 0\.\.1"),
    (_with(("phase", 0, "invert"), {"start": 0, "end": 2}), r"phase 1: invert.end = 2 is outside"),
    (_with(("phase", 0, "thickness"), "bold"), r"phase 1: thickness = 'bold' is not a number"),
    (_with(("phase", 0, "attrs"), {"device": 3}), r"phase 1: attrs.device = 3 is not a string"),
    (_with(("phase", 0, "attrs"), {"phase": "x"}), r"phase 1: attrs.phase is reserved"),
    (_with(("batch_size",), 0), r"batch_size = 0 must be a whole number > 0"),
    (_with(("seed",), 1.5), r"seed = 1.5 must be a whole number"),
    (_with(("phase",), []), r"no phases: add at least one \[\[phase\]\]"),
    (
        _with(("rotation",), 5),
        r"unknown top-level key 'rotation' \(phase keys go under \[\[phase\]\]\)",
    ),
    (_without(("name",)), r"missing top-level key 'name'"),
]


@pytest.mark.parametrize(("data", "message"), INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_scenarios_name_the_key_and_phase(data: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, source="x.toml")


def test_errors_are_value_errors_prefixed_by_the_source() -> None:
    with pytest.raises(ValueError, match=r"^my.toml: phase 1: unknown key"):
        parse_scenario(_with(("phase", 0, "rotaton"), 30), source="my.toml")


def test_load_scenario_reads_toml_and_reports_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "s.toml"
    good.write_text(
        'name = "s"\nseed = 1\nbatch_size = 3\n[[phase]]\nbatches = 4\nnoise = { start = 0, end = 0.2 }\n'
    )
    sc = load_scenario(good)
    assert sc.n_batches == 4 and sc.onset_batch == 1
    assert sc.params_at(3).noise == pytest.approx(0.2)
    broken = tmp_path / "b.toml"
    broken.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.toml")


EXPECTED_BUNDLED = {
    # name: (n_batches, onset_batch)
    "demo-rotation": (10, 2),
    "no-drift": (120, None),
    "rotation-ramp": (30, 6),
    "sudden-inversion": (20, 5),
    "label-shift": (20, 5),
    "noise-burst": (20, 5),
    "gradual-thickness": (30, 6),
    "tiny": (4, 1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_BUNDLED))
def test_bundled_scenarios_load(name: str) -> None:
    sc = load_scenario(find_scenario(name))
    assert sc.name == name
    assert (sc.n_batches, sc.onset_batch) == EXPECTED_BUNDLED[name]
    assert sc.batch_size == (50 if name == "tiny" else 200)


def test_every_bundled_file_is_checked() -> None:
    # tabular-*.toml are the tabular task's (checked in test_tabular_scenario.py)
    digits = {p.stem for p in SCENARIOS_DIR.glob("*.toml") if not p.stem.startswith("tabular-")}
    assert digits == set(EXPECTED_BUNDLED)


def test_find_scenario_by_path_or_name(tmp_path: Path) -> None:
    own = tmp_path / "mine.toml"
    own.write_text("")
    assert find_scenario(own) == own
    assert find_scenario("tiny.toml").name == "tiny.toml"
    with pytest.raises(ScenarioError, match="neither a file nor a bundled scenario"):
        find_scenario("nope")
