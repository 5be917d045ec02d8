"""Monitor-only use: the task from `[task] classes` (no plugin, no model), the `[drift]`
reference-window keys, and how a logged input is shown to a labeler."""

from __future__ import annotations

import base64
import doctest
import json
import xml.etree.ElementTree as ET

import pytest

import retrain.monitor as monitor
from flows.config import ConfigError, load_config
from flows.loop.engine import Loop
from retrain.task import MonitorOnlyError, load_task, monitor_task
from storage.home import DataHome

CLASSES = ["class_0", "class_1", "class_2"]


def config(tmp_path, text: str, env: dict | None = None):
    path = tmp_path / "lw.toml"
    path.write_text(text)
    return load_config(path, env=env or {})


def test_classes_from_config_make_a_monitor_only_task(tmp_path):
    cfg = config(tmp_path, f'[task]\nplugin = ""\nclasses = {json.dumps(CLASSES)}\n')
    assert cfg.task.classes == tuple(CLASSES)
    task = Loop(cfg, DataHome(tmp_path / "h")).task
    assert (task.name, task.classes, task.monitor_only) == ("monitor-only", tuple(CLASSES), True)
    # classes alone, the plugin left at its default (digits): monitor-only too
    only = config(tmp_path, f"[task]\nclasses = {json.dumps(CLASSES)}\n")
    assert Loop(only, DataHome(tmp_path / "h")).task.monitor_only
    # from the environment: comma-separated
    env = config(tmp_path, "", env={"LOOPWRIGHT_TASK__CLASSES": "cat, dog"})
    assert env.task.classes == ("cat", "dog")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[task]\nclasses = [1, 2]\n", "must be a list of non-empty names"),
        ('[drift]\nreference = "log"\n', r"\[drift\] reference = 'log' is not one of"),
        ('[drift]\nstattest = "exact"\n', r"\[drift\] stattest = 'exact' is not one of"),
        ("[drift]\np_value = 1.0\n", r"\[drift\] p_value = 1.0 must lie between 0 and 1"),
        (
            '[drift]\nreference_end = "last week"\n',
            r"\[drift\] reference_end = 'last week' is not an ISO",
        ),
        ('[drift]\nreference_start = "2026-05-01"\n', "without reference_end"),
        (
            '[drift]\nreference_start = "2026-05-09"\nreference_end = "2026-05-08"\n',
            "is not before",
        ),
    ],
)
def test_bad_monitor_keys_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, text)


def test_one_class_is_refused_by_the_task(tmp_path):
    cfg = config(tmp_path, '[task]\nclasses = ["cat"]\n')
    with pytest.raises(ValueError, match="task.classes = \\['cat'\\]: name at least 2 classes"):
        load_task(cfg.task.plugin, cfg.task.classes)


def test_an_unquoted_toml_time_is_accepted(tmp_path):
    cfg = config(tmp_path, "[drift]\nreference_end = 2026-05-08T00:00:00Z\n")
    assert cfg.drift.reference_end == "2026-05-08T00:00:00+00:00"


def test_task_loading_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="task.plugin is empty and task.classes is not set"):
        load_task("")
    with pytest.raises(
        ValueError, match="cannot import 'nowhere.task' .No module named 'nowhere'.*PYTHONPATH"
    ):
        load_task("nowhere.task:TASK")
    with pytest.raises(ValueError, match="'retrain.task' has no 'TASKS'"):
        load_task("retrain.task:TASKS")
    with pytest.raises(ValueError, match="differs from the classes of task.plugin"):
        load_task("tests.wine_task:TASK", ["a", "b"])
    assert load_task("tests.wine_task:TASK", CLASSES).name == "wine"  # the same classes: fine
    with pytest.raises(ValueError, match="must be non-empty and distinct"):
        monitor_task(["a", "a"])


def test_a_monitor_only_task_has_no_model_and_says_what_to_do():
    task = monitor_task(CLASSES)
    for call in (task.build_model, lambda: task.decode_inputs([b"x"]),
                 lambda: task.features(None), lambda: task.encode_input(None)):  # fmt: skip
        with pytest.raises(MonitorOnlyError, match="loopwright log-predictions"):
            call()


def test_how_a_labeler_sees_what_was_logged():
    task = monitor_task(CLASSES)
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
    )
    # a 1x1 image, scaled up to 256 px, as a CSS background (Label Studio drops data: src)
    assert task.render(png) == (
        '<div style="width: 256px; height: 256px; background-image: url(data:image/png;base64,'
        + base64.b64encode(png).decode()
        + "); background-size: contain; background-repeat: no-repeat; image-rendering: "
        'pixelated"></div>'
    )
    table = task.render(json.dumps({"alcohol": 13.2, "note": "<b>dry</b>"}).encode())
    assert table == (
        "<table><tr><th>alcohol</th><td>13.2</td></tr>"
        "<tr><th>note</th><td>&lt;b&gt;dry&lt;/b&gt;</td></tr></table>"
    )
    assert task.render(b"a review") == '<pre style="white-space: pre-wrap">a review</pre>'
    with pytest.raises(ValueError, match="neither an image .* nor UTF-8 text"):
        task.render(b"\xff\xfe\x00\x81")
    assert task.render_uri("s3://bucket/rows/1.csv") == (
        '<a href="s3://bucket/rows/1.csv" target="_blank">s3://bucket/rows/1.csv</a>'
    )
    root = ET.fromstring(task.labeling_config)
    assert root.find("HyperText").attrib == {
        "name": "image", "value": "$image", "inline": "true", "clickableLinks": "true",
    }  # fmt: skip
    choices = root.find("Choices")
    assert choices.attrib["name"] == "label" and choices.attrib["toName"] == "image"
    assert [c.attrib["value"] for c in choices] == CLASSES


def test_doctests():
    import retrain.task

    assert doctest.testmod(monitor).failed == 0
    assert doctest.testmod(retrain.task).failed == 0
