"""The built-in `digits` task plugin: `retrain.digits.task:TASK`.

Inputs are stored as 8-bit PNG (`retrain/digits/codec.py` says why).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from retrain.digits.codec import CLASSES, INPUT_SHAPE, decode_inputs, encode_input
from retrain.digits.expectations import default_expectations
from retrain.digits.model import DigitsCNN
from retrain.digits.serving_input import INPUT_SCHEMA, parse_input
from retrain.task import Task, image_labeling_config

RENDER_SIZE = 128  # pixels a side in Label Studio: an 8x8 image is unreadable at 1:1


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


def simulation():
    """The digits simulation (imported when asked for: importing the task stays cheap)."""
    from retrain.digits.simulation import DigitsSimulation

    return DigitsSimulation()


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
    simulation=simulation,
    parse_input=parse_input,
    input_schema=INPUT_SCHEMA,
    group_attr="scan",  # the simulator's source image (retrain/digits/simulator.py SCAN_ATTR)
)
