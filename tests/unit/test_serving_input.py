"""The tasks' serving input hook: digits' JSON form (64 numbers in 0..16) gives the very
bytes and model input the loop logs for that image; bad forms are ValueErrors naming the fix."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.digits.data import load_images
from retrain.digits.task import TASK
from tests.wine_task import TASK as WINE


def test_a_sklearn_row_gives_the_bytes_the_loop_logs_for_that_image():
    from sklearn.datasets import load_digits

    raw = load_digits().data  # (1797, 64) in 0..16, what a client sends
    images, _ = load_images()  # what the simulator encodes (0..1)
    for i in (0, 5, 1796):
        x = TASK.parse_input(raw[i].tolist())
        assert x.shape == (1, 8, 8) and x.dtype == np.float32
        assert TASK.encode_input(x) == TASK.encode_input(images[i])
        np.testing.assert_array_equal(
            TASK.decode_inputs([TASK.encode_input(x)]),
            TASK.decode_inputs([TASK.encode_input(images[i])]),
        )


def test_row_major_and_nested_rows_are_the_same_image():
    flat = list(range(16)) * 4
    nested = [flat[r * 8 : (r + 1) * 8] for r in range(8)]
    np.testing.assert_array_equal(TASK.parse_input(flat), TASK.parse_input(nested))
    x = TASK.parse_input(flat)
    assert x[0, 0, 1] == pytest.approx(1 / 16) and x[0, 1, 0] == pytest.approx(8 / 16)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ([1] * 63, "has 63 numbers: a digit is 64"),
        ([1] * 65, "has 65 numbers"),
        ("0,1,2", "is a str: send a list of 64 numbers"),
        ({"pixels": []}, "is a dict"),
        ([1] * 63 + ["x"], "[63] is 'x', not a number"),
        ([1] * 63 + [True], "[63] is True, not a number"),
        ([1] * 63 + [None], "[63] is None, not a number"),
        ([17] + [0] * 63, "[0] = 17 is outside 0..16"),
        ([-1] + [0] * 63, "[0] = -1 is outside 0..16"),
        ([[1] * 8] * 7 + [[1] * 7], "is 8 rows of"),
    ],
)
def test_bad_digit_inputs_say_the_fix(value, needle):
    with pytest.raises(ValueError) as exc:
        TASK.parse_input(value)
    assert needle in str(exc.value)


def test_schema_for_docs_has_an_example_that_parses():
    assert TASK.input_schema["maxItems"] == 64
    assert TASK.parse_input(TASK.input_schema["example"]).shape == (1, 8, 8)


def test_wine_takes_the_13_unscaled_measurements():
    from sklearn.datasets import load_wine

    row = load_wine().data[0]
    x = WINE.parse_input(row.tolist())
    assert WINE.encode_input(x) == WINE.encode_input(row)
    with pytest.raises(ValueError, match="13 measurements"):
        WINE.parse_input([1.0] * 12)
    with pytest.raises(ValueError, match="non-number"):
        WINE.parse_input([1.0] * 12 + ["a"])
