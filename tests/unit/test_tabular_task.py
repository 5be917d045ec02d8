"""The tabular task's contract parts: record codec, features and names, labeling config."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from retrain.tabular import schema
from retrain.tabular.schema import INPUT_SCHEMA
from retrain.tabular.task import TASK, labeling_config
from retrain.task import check_labeling_config, load_task

RECORD = dict(INPUT_SCHEMA["example"])  # the JSON form's documented example: one applicant


def test_plugin_loads_by_its_spec():
    task = load_task("retrain.tabular.task:TASK")
    assert task.name == "tabular"
    assert task.classes == ("class_0", "class_1")
    assert task.input_shape == (40,)


def test_record_round_trips_through_the_log_bytes():
    x = TASK.parse_input(RECORD)
    data = TASK.encode_input(x)
    assert json.loads(data)["car"] == 8
    back = TASK.decode_inputs([data, TASK.encode_input(RECORD)])
    np.testing.assert_array_equal(back[0], x)
    np.testing.assert_array_equal(back[1], x)
    assert back.dtype == np.float32
    # numeric in natural units, then exactly one 1 per categorical block
    assert back[0, 0] == np.float32(103125.48)
    names = TASK.feature_names
    assert names[int(np.flatnonzero(back[0, 6:11])[0]) + 6] == "elevel=2"
    assert names[int(np.flatnonzero(back[0, 11:31])[0]) + 11] == "car=8"
    assert names[int(np.flatnonzero(back[0, 31:])[0]) + 31] == "zipcode=3"


def test_features_have_names_and_the_reference_scale():
    x = TASK.decode_inputs([TASK.encode_input(RECORD)] * 3)
    f = TASK.features(x)
    assert f.shape == (3, len(TASK.feature_names)) == (3, 40)
    assert len(set(TASK.feature_names)) == 40
    expected = (103125.48 - schema.REFERENCE_MEAN[0]) / schema.REFERENCE_STD[0]
    assert f[0, 0] == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(f[:, 6:], x[:, 6:])  # one-hots as they are


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"car": 21}, "input.car = 21"),
        ({"age": "old"}, "input.age = 'old'"),
        ({"zip": 3}, "unknown field 'zip'"),
        ({"elevel": 1.5}, "input.elevel = 1.5"),
    ],
)
def test_bad_record_names_the_field(change, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        TASK.parse_input({**RECORD, **change})


def test_missing_field_is_named():
    rec = dict(RECORD)
    del rec["loan"]
    with pytest.raises(ValueError, match="no field 'loan'"):
        TASK.parse_input(rec)
    with pytest.raises(ValueError, match="not a JSON record"):
        TASK.decode_inputs([b"\x89PNG"])


def test_render_shows_every_field_as_a_table_row():
    html = TASK.render(TASK.encode_input(RECORD))
    table = ET.fromstring(html)
    cells = {tr.find("th").text: tr.find("td").text for tr in table.iter("tr")}
    assert list(cells) == list(schema.FIELDS)
    assert cells["salary"] == "103,125" and cells["car"] == "8" and cells["commission"] == "0"


def test_labeling_config_parses_and_matches_the_classes():
    root = ET.fromstring(TASK.labeling_config)
    shown = root.find("HyperText")
    assert shown.get("name") == "image" and shown.get("value") == "$image"
    choices = root.find("Choices")
    assert [c.get("value") for c in choices.iter("Choice")] == list(TASK.classes)
    check_labeling_config(TASK.labeling_config, TASK.classes)
    with pytest.raises(ValueError, match=r"offer \['class_0'\], the task's classes are"):
        check_labeling_config(labeling_config(("class_0",)), TASK.classes)
