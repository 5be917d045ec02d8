"""A task is a plugin (`module:object`): everything the loop must know about one model.

Why a plugin: the loop (logging, curation, retraining, the gate) is the same for every
model; what changes is the classes, the network, how an input is shown to a labeler and
which behaviours the model must keep. A user's own model is a `Task` like `digits`.

Plugin hooks are callables (`build_model`, `simulation`), so that importing a task builds
nothing: `simulation()` returns the task's `Simulation` (scenario files, simulated traffic
with its truth, a held-out set, a simulated annotator; `retrain/simulation.py`), which is
what `loopwright demo` and `loopwright bench loop` drive. A task without one (None) is
served, curated and retrained as usual; only the demo and the benchmark need it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from retrain.monitor import DEFAULT_PLUGIN, MonitorOnlyError, monitor_parts
from retrain.simulation import Simulation

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
class TrainingRecipe:
    """A task's own training recipe, for a model the shared one (Adam, cross-entropy, the
    `[retrain]` epochs and learning rate; `retrain/training.py`) underfits or overfits.

    A field left None takes `[retrain]`'s value; a field set here wins over `[retrain]` for
    this task, because the task knows its model. `module(task, recipe)` may return the
    task's own LightningModule: it must hold the network as `.model` (what the registry
    saves) and train on `(x, y)` batches. `prepare(model, x, y)` runs before a fit from
    scratch, e.g. to fix an input standardisation from the training rows in the model's
    buffers (saved with its weights, kept by fine-tunes).
    """

    max_epochs: int | None = None  # fits from scratch
    finetune_epochs: int | None = None  # fits that start from the champion's weights
    lr: float | None = None
    batch_size: int | None = None
    optimizer: str = "adam"  # adam | adamw | sgd
    weight_decay: float = 0.0
    early_stopping_patience: int = 0  # epochs without a lower training loss; 0: off
    scratch: bool = False  # always fit from scratch, even with [retrain] mode = "finetune"
    prepare: Callable[[object, np.ndarray, np.ndarray], None] | None = None
    module: Callable[..., object] | None = None  # (task, recipe) -> LightningModule

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(
                f"TrainingRecipe.optimizer = {self.optimizer!r}: use adam, adamw or sgd"
            )
        for name in ("max_epochs", "finetune_epochs", "batch_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"TrainingRecipe.{name} = {v!r}: a whole number >= 1, or None")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"TrainingRecipe.lr = {self.lr!r}: the learning rate must be > 0")
        if self.weight_decay < 0 or self.early_stopping_patience < 0:
            raise ValueError("TrainingRecipe.weight_decay and early_stopping_patience must be >= 0")


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
    render: Callable[[bytes], str]  # stored input -> what a labeler's browser shows ($image)
    labeling_config: str  # Label Studio XML; the shown field is $image, the choices are `label`
    slice_attrs: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = field(default_factory=tuple)
    # a logged `input_uri` -> what a labeler is shown; None: rows with only a URI can't be shown
    render_uri: Callable[[str], str] | None = None
    monitor_only: bool = False  # classes only (a model served elsewhere): no model to train
    # -> the task's Simulation (demo, bench loop); None: the task cannot be simulated
    simulation: Callable[[], Simulation] | None = None
    # serving (`loopwright serve-model`): one request's JSON `input` -> one model input of
    # `input_shape`, in the scale `encode_input` takes; raises ValueError naming the fix.
    # None: the task cannot be served over HTTP (its models still score batches).
    parse_input: Callable[[object], np.ndarray] | None = None
    # the JSON form `parse_input` reads, as a JSON schema (shown at /docs), with an example
    input_schema: Mapping[str, object] | None = None
    # names of the `features` columns (drift reports, the card); (): "f0", "f1", ...
    feature_names: tuple[str, ...] = ()
    # how the model is trained when the shared recipe does not fit it; None: the shared one
    recipe: TrainingRecipe | None = None
    # attr naming a row's source (rows sharing it are near-copies: one scanned document, one
    # user): the train/eval split keeps a source on one side. None: every row is its own
    group_attr: str | None = None

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


def image_labeling_config(classes: Sequence[str]) -> str:
    """Label Studio config for a task whose labelers see one image (`$image`) and pick one
    class: what an image task (digits, a user's image model) needs, written once."""
    choices = "".join(f'    <Choice value="{c}"/>\n' for c in classes)
    return (
        "<View>\n"
        '  <Image name="image" value="$image"/>\n'
        '  <Choices name="label" toName="image" choice="single" showInLine="true">\n'
        + choices
        + "  </Choices>\n"
        "</View>\n"
    )


def check_labeling_config(
    config: str, classes: Sequence[str], where: str = "labeling_config"
) -> None:
    """What the Label Studio adapter relies on in a task's config: an object named `image`
    showing `$image` (an Image, HyperText, Text... view) and single Choices named `label`
    on it whose values are exactly the task's classes; else a ValueError naming the fix.

    >>> check_labeling_config(image_labeling_config(["a", "b"]), ["a", "b"])
    >>> check_labeling_config(image_labeling_config(["a"]), ["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: labeling_config: its Choices 'label' offer ['a'], the task's classes are ['a', 'b']: give one <Choice value=...> per class, in any order
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise ValueError(f"{where} is not valid XML ({exc}): give a Label Studio <View>") from None
    shown = [e for e in root.iter() if e.get("name") == "image"]
    if not shown or shown[0].get("value") != "$image":
        raise ValueError(
            f'{where} has no object name="image" value="$image": the adapter puts what '
            'task.render returns in $image; show it with e.g. <HyperText name="image" value="$image"/>'
        )
    choices = [e for e in root.iter("Choices") if e.get("name") == "label"]
    if not choices or choices[0].get("toName") != "image":
        raise ValueError(
            f'{where} has no <Choices name="label" toName="image">: labels are read from it'
        )
    offered = [c.get("value") for c in choices[0].iter("Choice")]
    if sorted(map(str, offered)) != sorted(map(str, classes)):
        raise ValueError(
            f"{where}: its Choices 'label' offer {offered}, the task's classes are "
            f"{list(classes)}: give one <Choice value=...> per class, in any order"
        )


def monitor_task(classes: Sequence[str]) -> Task:
    """A task made of class names only, for a model served elsewhere that loopwright watches:
    predictions are logged as they were made (`log-predictions`), drift compares windows of
    the log, curation sends what was logged to Label Studio (the input as an image, text or a
    table of JSON fields, or its `input_uri`), labels come back. There is no model: anything
    that would train or run one raises `MonitorOnlyError` saying what to configure instead.

    >>> t = monitor_task(["cat", "dog"])
    >>> t.name, t.classes, t.monitor_only
    ('monitor-only', ('cat', 'dog'), True)
    """
    names = check_classes(classes)
    parts = monitor_parts(names)
    return Task(name="monitor-only", classes=names, input_shape=(), monitor_only=True, **parts)


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    names = tuple(str(c) for c in classes)
    if len(names) < 2:
        raise ValueError(
            f"task.classes = {list(names)}: name at least 2 classes, in the order of your "
            'model\'s probability vector, e.g. classes = ["class_0", "class_1", "class_2"]'
        )
    if any(not n.strip() for n in names) or len(set(names)) != len(names):
        raise ValueError(
            f"task.classes = {list(names)}: class names must be non-empty and distinct"
        )
    return names


def load_task(spec: str, classes: Sequence[str] = ()) -> Task:
    """The task of `[task]`: the plugin `module:object` (e.g. `retrain.digits.task:TASK`), or,
    with `classes` and the default (or an empty) plugin, a monitor-only task of those classes.
    A plugin given together with `classes` must have exactly those classes."""
    if classes and spec in ("", DEFAULT_PLUGIN):
        return monitor_task(classes)
    if not spec:
        raise ValueError(
            'task.plugin is empty and task.classes is not set: set classes = ["a", "b", ...] '
            "under [task] to watch a model served elsewhere, or plugin = 'package.module:OBJECT'"
        )
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"task.plugin = {spec!r} must look like 'package.module:OBJECT'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"task.plugin = {spec!r}: cannot import {module_name!r} ({exc}): is its folder on "
            "PYTHONPATH (or the command run from the folder holding the package)?"
        ) from None
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
    if not task.monitor_only:
        check_labeling_config(
            task.labeling_config, task.classes, f"task.plugin = {spec!r}: labeling_config"
        )
        if task.feature_names and len(set(task.feature_names)) != len(task.feature_names):
            raise ValueError(f"task.plugin = {spec!r}: feature_names must be distinct")
    if classes and tuple(str(c) for c in classes) != tuple(task.classes):
        raise ValueError(
            f"task.classes = {list(classes)} differs from the classes of task.plugin = {spec!r} "
            f'({list(task.classes)}): remove task.classes, or set plugin = "" to watch a '
            "model by its classes only"
        )
    return task


__all__ = [
    "Expectation",
    "ExpectationResult",
    "MonitorOnlyError",
    "PredictProba",
    "Simulation",
    "Task",
    "TrainingRecipe",
    "check_labeling_config",
    "load_task",
    "monitor_task",
]
