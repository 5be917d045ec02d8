"""A user's own model, as a new user writes one: scikit-learn's `load_wine` (13 numeric
features, 3 classes) with a small PyTorch MLP, as the task plugin `tests.wine_task:TASK`.

Tests use it to walk the path a person with their own data takes (seed -> retrain ->
promote -> score-batch, and log-predictions with 13 features) on a task that is not digits,
and, through its small simulation (`tests/wine_simulation.py`, scenarios in
`tests/scenarios/`), to run the demo's and the benchmark's loop on it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

from retrain.task import Task, image_labeling_config

CLASSES = ("class_0", "class_1", "class_2")
N_FEATURES = 13
# the features' maxima in load_wine: inputs are scaled to about 0..1 before the network
SCALE = np.array(
    [14.83, 5.8, 3.23, 30.0, 162.0, 3.88, 5.08, 0.66, 3.58, 13.0, 1.71, 4.0, 1680.0],
    dtype=np.float32,
)


def build_model():
    import torch.nn as nn

    return nn.Sequential(nn.Linear(N_FEATURES, 32), nn.ReLU(), nn.Linear(32, len(CLASSES)))


def encode_input(x: np.ndarray) -> bytes:
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size != N_FEATURES:
        raise ValueError(f"input has {x.size} values: a wine is {N_FEATURES} measurements")
    return x.tobytes()


def decode_inputs(items: Sequence[bytes]) -> np.ndarray:
    if len(items) == 0:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    raw = np.stack([np.frombuffer(b, dtype=np.float32) for b in items])
    return raw / SCALE


def features(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


def render(data: bytes) -> str:
    text = ", ".join(f"{v:.3g}" for v in np.frombuffer(data, dtype=np.float32))
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode("ascii")


LABELING_CONFIG = image_labeling_config(CLASSES)


def parse_input(value: object) -> np.ndarray:
    """A serving request's `input`: the 13 measurements of `load_wine().data`, unscaled."""
    if not isinstance(value, list) or len(value) != N_FEATURES:
        size = len(value) if isinstance(value, list) else type(value).__name__
        raise ValueError(f"is {size}: send a list of the {N_FEATURES} measurements of load_wine")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ValueError(f"holds a non-number: send {N_FEATURES} numbers")
    x = np.asarray(value, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("holds NaN or inf: send finite measurements")
    return x


INPUT_SCHEMA = {
    "description": f"A wine: the {N_FEATURES} measurements of sklearn's load_wine, unscaled",
    "type": "array",
    "items": {"type": "number"},
    "minItems": N_FEATURES,
    "maxItems": N_FEATURES,
}


def simulation():
    """Wine rows replayed with a feature shift (imported when asked for)."""
    from tests.wine_simulation import WineSimulation

    return WineSimulation()


TASK = Task(
    name="wine",
    classes=CLASSES,
    input_shape=(N_FEATURES,),
    build_model=build_model,
    encode_input=encode_input,
    decode_inputs=decode_inputs,
    features=features,
    render=render,
    labeling_config=LABELING_CONFIG,
    simulation=simulation,
    parse_input=parse_input,
    input_schema=INPUT_SCHEMA,
)


def wine_rows(n: int, offset: int = 0, seed: int = 0) -> tuple[list[str], list[bytes], list[str]]:
    """`n` shuffled wines as (request ids, encoded inputs, labels), from row `offset` of a
    seeded permutation (so two calls with different offsets never share a wine)."""
    from sklearn.datasets import load_wine

    data = load_wine()
    order = np.random.default_rng(seed).permutation(len(data.target))[offset : offset + n]
    ids = [f"wine-{i:03d}" for i in order]
    inputs = [encode_input(data.data[i]) for i in order]
    labels = [CLASSES[int(data.target[i])] for i in order]
    return ids, inputs, labels
