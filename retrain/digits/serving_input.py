"""How a digit looks in a serving request's JSON: 64 numbers in scikit-learn's 0..16 scale.

Why that scale: it is what `sklearn.datasets.load_digits().data` holds, so a client can send
a row of it as is. `parse_input` divides by 16 to the 0..1 image the loop logs and trains on
(`retrain/digits/data.py`), and the server then stores it with the task's `encode_input`
(8-bit PNG) and predicts on its decoded bytes, exactly as `score-batch` would for that image.
"""

from __future__ import annotations

import math

import numpy as np

from retrain.digits.codec import INPUT_SHAPE

PIXELS = 64
MAX_VALUE = 16.0

INPUT_SCHEMA: dict[str, object] = {
    "description": (
        "One 8x8 digit: 64 numbers in scikit-learn's 0..16 scale (load_digits().data), "
        "row-major (the first 8 are the top row); an 8x8 list of lists is also accepted."
    ),
    "type": "array",
    "minItems": 8,
    "maxItems": PIXELS,
    "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]},
    "example": [0, 0, 5, 13, 9, 1, 0, 0] * 8,
}


def _numbers(value: object) -> list[float]:
    if not isinstance(value, list):
        raise ValueError(
            f"is a {type(value).__name__}: send a list of {PIXELS} numbers in 0..16, row-major"
        )
    if len(value) == 8 and all(isinstance(row, list) for row in value):
        if any(len(row) != 8 for row in value):
            lengths = [len(row) for row in value]
            raise ValueError(
                f"is 8 rows of {lengths} numbers: send 8 rows of 8, or one flat list of {PIXELS}"
            )
        value = [v for row in value for v in row]
    if len(value) != PIXELS:
        raise ValueError(f"has {len(value)} numbers: a digit is {PIXELS} (8x8, row-major) in 0..16")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"[{i}] is {v!r}, not a number: send numbers in 0..16")
        if not math.isfinite(v) or not 0.0 <= v <= MAX_VALUE:
            raise ValueError(
                f"[{i}] = {v!r} is outside 0..16: send pixels in scikit-learn's 0..16 scale "
                "(divide 0..255 pixels by 16)"
            )
        out.append(float(v))
    return out


def parse_input(value: object) -> np.ndarray:
    """A request's `input` -> one (1, 8, 8) float32 image in 0..1 (what `encode_input` takes).

    >>> x = parse_input([16] * 64)
    >>> x.shape, float(x.max())
    ((1, 8, 8), 1.0)
    >>> parse_input([1, 2])
    Traceback (most recent call last):
    ...
    ValueError: has 2 numbers: a digit is 64 (8x8, row-major) in 0..16
    """
    pixels = np.asarray(_numbers(value), dtype=np.float32) / MAX_VALUE
    return pixels.reshape(INPUT_SHAPE)
