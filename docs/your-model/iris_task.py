"""A user's own model as a loopwright task plugin: scikit-learn's iris flowers (4 measurements,
3 species) with a small PyTorch MLP. `docs/your-model.md` builds this file step by step.

Load it with `[task] plugin = "iris_task:TASK"` and this folder on PYTHONPATH; nothing in it
imports loopwright's internals beyond the `Task` contract.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

from retrain.task import Task, TrainingRecipe

CLASSES = ("setosa", "versicolor", "virginica")
FIELDS = ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")
# the largest value of each measurement in the data set: inputs are scaled to about 0..1
SCALE = np.array([7.9, 4.4, 6.9, 2.5], dtype=np.float32)


def build_model():
    """The PyTorch module to train: 4 scaled measurements in, 3 logits out."""
    import torch.nn as nn

    return nn.Sequential(nn.Linear(len(FIELDS), 16), nn.ReLU(), nn.Linear(16, len(CLASSES)))


def encode_input(x: np.ndarray) -> bytes:
    """One flower (4 measurements, in cm) -> the bytes stored in the prediction log."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size != len(FIELDS):
        raise ValueError(f"input has {x.size} values: a flower is {len(FIELDS)} measurements")
    return x.tobytes()


def decode_inputs(items: Sequence[bytes]) -> np.ndarray:
    """Stored bytes -> the model's input batch (N, 4), scaled."""
    if len(items) == 0:
        return np.zeros((0, len(FIELDS)), dtype=np.float32)
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in items]) / SCALE


def features(x: np.ndarray) -> np.ndarray:
    """What drift checks compare: the measurements back in cm (readable in reports)."""
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1) * SCALE


def render(data: bytes) -> str:
    """What a labeler sees in Label Studio: the flower's measurements as a table."""
    values = np.frombuffer(data, dtype=np.float32)
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.1f}</td></tr>"
        for k, v in zip(FIELDS, values, strict=True)
    )
    return f'<table class="loopwright-record">{rows}</table>'


def labeling_config(classes: Sequence[str] = CLASSES) -> str:
    """Label Studio's view: the table (`$image` is the one field loopwright fills) and one
    choice per species, the model's guess pre-selected."""
    choices = "".join(f"    <Choice value={quoteattr(c)}/>\n" for c in classes)
    return (
        "<View>\n"
        '  <Header value="Which iris is this?"/>\n'
        '  <HyperText name="image" value="$image" inline="true" selectionEnabled="false"/>\n'
        '  <Choices name="label" toName="image" choice="single" showInLine="true">\n'
        + choices
        + "  </Choices>\n"
        "</View>\n"
    )


def parse_input(value: object) -> np.ndarray:
    """A serving request's `input` (`loopwright serve-model`): the 4 measurements in cm."""
    if not isinstance(value, list) or len(value) != len(FIELDS):
        raise ValueError(f"send a list of the {len(FIELDS)} measurements {list(FIELDS)} in cm")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ValueError(f"holds a non-number: send {len(FIELDS)} numbers")
    return np.asarray(value, dtype=np.float32)


TASK = Task(
    name="iris",
    classes=CLASSES,
    input_shape=(len(FIELDS),),
    build_model=build_model,
    encode_input=encode_input,
    decode_inputs=decode_inputs,
    features=features,
    render=render,
    labeling_config=labeling_config(),
    parse_input=parse_input,
    input_schema={
        "description": "An iris flower: " + ", ".join(FIELDS),
        "type": "array",
        "items": {"type": "number"},
        "minItems": len(FIELDS),
        "maxItems": len(FIELDS),
    },
    feature_names=FIELDS,
    # 100 small rows: more epochs and a larger step than the digits CNN's defaults
    recipe=TrainingRecipe(max_epochs=200, finetune_epochs=50, lr=0.01, batch_size=16),
)
