"""The built-in `digits` task plugin: `retrain.digits.task:TASK`.

Why inputs are stored as 8-bit PNG: the prediction log keeps what a labeler will see,
small (~100 bytes a digit) and viewable by any browser; 8 bits lose at most 1/255 per
pixel, far below anything the model or a person can tell apart.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from retrain.digits.expectations import default_expectations
from retrain.digits.model import DigitsCNN
from retrain.task import Task, image_labeling_config

CLASSES = tuple(str(d) for d in range(10))
INPUT_SHAPE = (1, 8, 8)
RENDER_SIZE = 128  # pixels a side in Label Studio: an 8x8 image is unreadable at 1:1


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


def features(x: np.ndarray) -> np.ndarray:
    """The 64 pixels, flattened: what drift statistics compare between windows."""
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def render(data: bytes) -> str:
    """Stored PNG -> a `data:image/png;base64,...` URI, upscaled (nearest) so a person can read it."""
    image = Image.open(io.BytesIO(data)).convert("L")
    big = image.resize((RENDER_SIZE, RENDER_SIZE), resample=Image.Resampling.NEAREST)
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


LABELING_CONFIG = image_labeling_config(CLASSES)

TASK = Task(
    name="digits",
    classes=CLASSES,
    input_shape=INPUT_SHAPE,
    build_model=DigitsCNN,
    encode_input=encode_input,
    decode_inputs=decode_inputs,
    features=features,
    render=render,
    labeling_config=LABELING_CONFIG,
    slice_attrs=("phase", "device"),
    expectations=default_expectations(),
)
