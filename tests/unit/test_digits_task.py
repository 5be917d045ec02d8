"""The digits task plugin: storage encoding, rendering for labelers, expectations."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from retrain.digits.data import split_digits
from retrain.digits.expectations import (
    clean_digits_accuracy,
    every_class_recalled,
    noise_invariance,
    rotation_invariance,
)
from retrain.digits.task import TASK
from retrain.task import load_task


def test_load_task_finds_the_plugin() -> None:
    task = load_task("retrain.digits.task:TASK")
    assert task is TASK
    assert task.classes == tuple("0123456789") and task.input_shape == (1, 8, 8)
    assert task.slice_attrs == ("phase", "device") and len(task.expectations) >= 3


def test_encode_decode_roundtrip_within_one_grey_level() -> None:
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    stored = [TASK.encode_input(row) for row in x]
    assert all(b.startswith(b"\x89PNG") for b in stored)
    back = TASK.decode_inputs(stored)
    assert back.shape == (5, 1, 8, 8) and back.dtype == np.float32
    assert np.abs(back - x).max() <= 1 / 255 / 2 + 1e-6
    assert TASK.decode_inputs([]).shape == (0, 1, 8, 8)


def test_encode_and_decode_refuse_wrong_inputs() -> None:
    with pytest.raises(ValueError, match=r"a digit is \(8, 8\)"):
        TASK.encode_input(np.zeros((9, 9)))
    with pytest.raises(ValueError, match="input 0 is not a readable image"):
        TASK.decode_inputs([b"not a png"])


def test_render_is_a_png_data_uri_a_person_can_read() -> None:
    x = np.array(split_digits().holdout_x[0])
    uri = TASK.render(TASK.encode_input(x))
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :])))
    assert image.format == "PNG" and image.size == (128, 128)
    # nearest upscaling: each source pixel is a 16x16 block of one grey level
    big = np.asarray(image)
    assert np.array_equal(big[::16, ::16], np.round(x * 255).astype(np.uint8))


def test_features_are_the_64_pixels() -> None:
    x = np.zeros((3, 1, 8, 8), np.float32)
    assert TASK.features(x).shape == (3, 64) and TASK.features(x).dtype == np.float32


def test_labeling_config_has_image_and_ten_single_choices() -> None:
    root = ET.fromstring(TASK.labeling_config)
    image = root.find("Image")
    choices = root.find("Choices")
    assert image.attrib == {"name": "image", "value": "$image"}
    assert choices.attrib["name"] == "label" and choices.attrib["toName"] == "image"
    assert choices.attrib["choice"] == "single"
    assert [c.attrib["value"] for c in choices.findall("Choice")] == list(TASK.classes)


def _constant(cls: int):
    def predict_proba(x: np.ndarray) -> np.ndarray:
        p = np.zeros((len(x), 10), np.float32)
        p[:, cls] = 1.0
        return p

    return predict_proba


def test_expectations_on_a_constant_model() -> None:
    s = split_digits()
    x, y = s.holdout_x[:50, None], s.holdout_y[:50]
    const = _constant(3)
    # a constant model is perfectly invariant, and functionally useless
    assert rotation_invariance().run(const, x, y).passed
    assert noise_invariance().run(const, x, y).value == 1.0
    clean = clean_digits_accuracy(min_accuracy=0.85).run(const, x, y)
    assert not clean.passed and clean.value == pytest.approx(np.mean(s.holdout_y == 3))
    recall = every_class_recalled().run(const, x, y)
    assert not recall.passed and recall.value == 0.0 and recall.threshold == 0.5


def test_invariance_notices_a_model_that_reads_orientation() -> None:
    def by_top_row(x: np.ndarray) -> np.ndarray:  # "class" = where the top-row ink peaks
        cls = np.asarray(x)[:, 0, 1, :].argmax(axis=1)
        return np.eye(10, dtype=np.float32)[cls]

    s = split_digits()
    result = rotation_invariance(degrees=20).run(
        by_top_row, s.holdout_x[:100, None], s.holdout_y[:100]
    )
    assert not result.passed and result.value < 0.9


def test_expectations_refuse_empty_inputs() -> None:
    with pytest.raises(ValueError, match="no inputs"):
        rotation_invariance().run(_constant(0), np.zeros((0, 1, 8, 8)), np.zeros(0, int))


def test_class_recall_skips_classes_with_too_few_examples() -> None:
    x = np.zeros((12, 1, 8, 8), np.float32)
    y = np.array([3] * 10 + [7, 7])  # class 7 is always wrong but has only 2 examples
    result = every_class_recalled(min_recall=0.5, min_count=5).run(_constant(3), x, y)
    assert result.passed and result.value == 1.0
    assert not every_class_recalled(min_count=2).run(_constant(3), x, y).passed
