"""A task is a plugin (`module:object`): everything the loop must know about one model.

Why a plugin: the loop (logging, curation, retraining, the gate) is the same for every
model; what changes is the classes, the network, how an input is shown to a labeler and
which behaviours the model must keep. A user's own model is a `Task` like `digits`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: predict_proba(x) -> (N, C) probabilities, for a batch of model inputs x of shape (N, *input_shape)
PredictProba = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExpectationResult:
    name: str
    passed: bool
    value: float  # the measured quantity (e.g. share of predictions unchanged)
    threshold: float  # what it had to reach
    detail: str  # one sentence a reviewer reads


@dataclass(frozen=True)
class Expectation:
    """A behavioural test (invariance, directional, minimum functionality) on a model.

    `run(predict_proba, x, y)` gets held-out inputs and their true labels (as class indices).
    """

    name: str
    description: str
    run: Callable[[PredictProba, np.ndarray, np.ndarray], ExpectationResult]


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    build_model: Callable[
        [], object
    ]  # -> torch.nn.Module: (N, *input_shape) float -> (N, C) logits
    encode_input: Callable[[np.ndarray], bytes]  # one input array -> bytes stored in the log
    decode_inputs: Callable[[Sequence[bytes]], np.ndarray]  # -> (N, *input_shape) float32
    features: Callable[[np.ndarray], np.ndarray]  # (N, *input_shape) -> (N, F) float32
    render: Callable[[bytes], str]  # stored input -> data URI a labeler's browser shows
    labeling_config: str  # Label Studio XML; the image field is $image, the choices are `label`
    slice_attrs: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = field(default_factory=tuple)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise ValueError(
                f"label {name!r} is not a class of task {self.name!r}: use one of {list(self.classes)}"
            ) from None


def load_task(spec: str) -> Task:
    """Load `module:object`, e.g. `retrain.digits.task:TASK`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"task.plugin = {spec!r} must look like 'package.module:OBJECT'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"task.plugin = {spec!r}: cannot import {module_name!r} ({exc})") from None
    try:
        task = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"task.plugin = {spec!r}: {module_name!r} has no {attr!r}") from None
    if callable(task) and not isinstance(task, Task):
        task = task()
    if not isinstance(task, Task):
        raise ValueError(
            f"task.plugin = {spec!r} is a {type(task).__name__}, not a retrain.task.Task"
        )
    return task
