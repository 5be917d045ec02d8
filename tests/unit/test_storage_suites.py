"""Edge-case suites on disk: rows resolved at add time (labeled only), validation, the files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PredictionLog, make_batch
from storage.seed import write_seed
from storage.suites import (
    add_suite,
    list_suites,
    load_suite,
    remove_suite,
    resolve_where,
    suites_dir,
)

CLASSES = ["a", "b"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def home(tmp_path) -> DataHome:
    """Six logged predictions r0..r5 (r0-r2 on device x, pred a; r3-r5 on device y, pred b),
    labels for r0, r1, r3, r4 (r1 and r4 say the model was wrong), and one seed row s0."""
    home = DataHome(tmp_path / "home")
    ids = [f"r{i}" for i in range(6)]
    probs = np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]] * 3)
    table = make_batch(
        request_ids=ids,
        features=np.zeros((6, 2)),
        probs=probs,
        classes=CLASSES,
        model_version="v0001",
        ts=[T0 + timedelta(minutes=i) for i in range(6)],
        inputs=[b"raw"] * 6,
        attrs=[{"device": "x"}] * 3 + [{"device": "y"}] * 3,
    )
    PredictionLog(home).append(table, CLASSES)
    events = [
        LabelEvent(rid, lab, "labelstudio", "ann", ts=T0 + timedelta(hours=1))
        for rid, lab in (("r0", "a"), ("r1", "b"), ("r3", "b"), ("r4", "a"))
    ]
    LabelLog(home).append(events, CLASSES)
    write_seed(home, ["s0"], np.zeros((1, 2)), [b"raw"], ["a"], classes=CLASSES)
    return home


def test_add_by_request_ids_keeps_labeled_rows_in_order(home):
    s = add_suite(home, "picked", request_ids=["r4", "r2", "s0", "nope", "r4", "r0"], now="T")
    assert s.request_ids == ("r4", "s0", "r0")  # r2 unlabeled, nope unknown, r4 once
    assert (s.dropped_unlabeled, s.unknown, s.created, s.where) == (1, 1, "T", None)
    stored = json.loads((suites_dir(home) / "picked.json").read_text())
    assert stored["request_ids"] == ["r4", "s0", "r0"] and stored["required"] is False
    assert load_suite(home, "picked") == s


def test_add_by_where_on_the_log_with_its_labels(home):
    s = add_suite(
        home,
        "mistakes-y",
        where="attrs['device'] = 'y' AND pred <> label",
        required=True,
        description="device y mistakes",
        min_accuracy=0.5,
    )
    assert s.request_ids == ("r4",) and s.dropped_unlabeled == 0
    assert s.where == "attrs['device'] = 'y' AND pred <> label" and s.required
    assert s.min_accuracy == 0.5 and datetime.fromisoformat(s.created).tzinfo is not None
    assert resolve_where(home, "attrs['device'] = 'x'") == (["r0", "r1"], 1)  # r2 unlabeled
    assert resolve_where(home, "label_source = 'labelstudio' AND confidence > 0.85") == (
        ["r0", "r1"],
        0,
    )


def test_list_show_remove(home):
    assert list_suites(home) == []
    add_suite(home, "b-rows", where="label = 'b'")
    add_suite(home, "a-rows", request_ids=["r0"])
    assert [s.name for s in list_suites(home)] == ["a-rows", "b-rows"]
    assert remove_suite(home, "a-rows").request_ids == ("r0",)
    assert [s.name for s in list_suites(home)] == ["b-rows"]
    with pytest.raises(StorageError, match=r"no suite 'a-rows': known suites are \['b-rows'\]"):
        load_suite(home, "a-rows")


def test_listing_a_home_without_suites_creates_nothing(tmp_path):
    home = DataHome(tmp_path / "empty")
    assert list_suites(home) == [] and not home.root.exists()


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "a/b", "x" * 65, "sp ace"])
def test_bad_names(home, name):
    with pytest.raises(StorageError, match="suite name"):
        add_suite(home, name, request_ids=["r0"])


def test_validation_errors_name_the_option_and_the_fix(home):
    with pytest.raises(StorageError, match="exactly one of --request-ids and --where"):
        add_suite(home, "s", request_ids=["r0"], where="true")
    with pytest.raises(StorageError, match="exactly one of --request-ids and --where"):
        add_suite(home, "s")
    with pytest.raises(
        StorageError, match=r"--where 'pred <>' is not a valid condition .*DuckDB: "
    ):
        add_suite(home, "s", where="pred <>")
    with pytest.raises(StorageError, match=r"--where 'colour = 1' .*DuckDB: .*colour"):
        add_suite(home, "s", where="colour = 1")
    with pytest.raises(StorageError, match="more than one SQL statement"):
        add_suite(home, "s", where="true); DROP TABLE x; SELECT (1")
    with pytest.raises(StorageError, match=r"selects no labeled row \(1 matching rows have no"):
        add_suite(home, "s", where="request_id = 'r2'")
    with pytest.raises(StorageError, match=r"no labeled row \(1 matching .*, 1 ids are not in"):
        add_suite(home, "s", request_ids=["r5", "ghost"])
    with pytest.raises(StorageError, match="--request-ids is empty"):
        add_suite(home, "s", request_ids=[" "])
    with pytest.raises(ValueError, match="tolerance"):
        add_suite(home, "s", request_ids=["r0"], tolerance=1.5)
    assert list_suites(home) == []  # nothing half-written
    add_suite(home, "s", request_ids=["r0"])
    with pytest.raises(StorageError, match="remove it first"):
        add_suite(home, "s", request_ids=["r1"])
