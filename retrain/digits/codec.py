"""How a digit is stored and read back: 8-bit PNG bytes <-> (1, 8, 8) floats.

Why a module of its own: the task (`retrain/digits/task.py`) and its simulation
(`retrain/digits/simulation.py`) both encode images, and neither may import the other.
Why PNG: the prediction log keeps what a labeler will see, small (~100 bytes a digit) and
viewable by any browser; 8 bits lose at most 1/255 per pixel, far below anything the model
or a person can tell apart.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

CLASSES = tuple(str(d) for d in range(10))
INPUT_SHAPE = (1, 8, 8)


def encode_input(x: np.ndarray) -> bytes:
    """One image, (8, 8) or (1, 8, 8) floats in 0..1, as 8-bit grayscale PNG bytes."""
    x = np.asarray(x, dtype=np.float32)
    if x.size != 64:
        raise ValueError(f"input has shape {x.shape}: a digit is (8, 8) or (1, 8, 8)")
    pixels = np.round(np.clip(x.reshape(8, 8), 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _decode_one(data: bytes, i: int) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises several types for bad bytes
        raise ValueError(
            f"input {i} is not a readable image ({exc}): store inputs with encode_input"
        ) from None
    if image.size != (8, 8):
        raise ValueError(f"input {i} is {image.size[0]}x{image.size[1]} pixels, a digit is 8x8")
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def decode_inputs(items: Sequence[bytes]) -> np.ndarray:
    """PNG bytes (as stored by encode_input) -> model inputs (N, 1, 8, 8) float32 in 0..1."""
    if len(items) == 0:
        return np.zeros((0, *INPUT_SHAPE), dtype=np.float32)
    return np.stack([_decode_one(b, i) for i, b in enumerate(items)])[:, None, :, :]
