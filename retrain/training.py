"""Fit a task's model on labeled examples with Lightning, reproducibly and quietly.

Why these choices: a retrain runs unattended inside a flow, so it must be deterministic
(same inputs -> same weights, bit for bit, so a gate decision can be replayed and the demo
and the benchmark decide alike), must not print progress bars or "GPU available" lines into
flow logs, and must leave no global state behind (RNG seeds, torch flags, thread count,
logger levels) for the next task in the same process.

Bit for bit on CPU takes: the seed for weight init and dropout (torch's global RNG, forked
and restored), seeded generators for shuffling and weighted sampling, no loader workers,
Lightning's `deterministic=True` (deterministic algorithms), and a fixed thread count
(`retrain.model.THREADS`): with another count the same fit gives other weights.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from retrain.model import THREADS, Classifier, fixed_threads, predict_proba
from retrain.task import Task

_LIGHTNING_LOGGERS = (
    "pytorch_lightning",
    "lightning_fabric",
    "lightning.pytorch",
    "lightning.fabric",
)


@dataclass(frozen=True)
class FitResult:
    state_dict: dict[str, torch.Tensor]  # CPU tensors, ready for the registry
    epochs: int
    train_loss: float  # mean cross-entropy of the final weights on the training set
    train_accuracy: float  # accuracy of the final weights on the training set
    seconds: float
    n_train: int


@contextmanager
def _quiet_and_contained(seed: int) -> Iterator[None]:
    """Silence Lightning's info lines and restore every global it touches on exit.

    Lightning's `deterministic=True` flips `torch.use_deterministic_algorithms` and sets
    CUBLAS_WORKSPACE_CONFIG for good; model init and shuffling use torch's global RNG.
    """
    levels = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        for name in _LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            # in-memory tensors: worker processes would only add start-up time
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
            # Lightning 2.6 vs torch 2.13 internals (pytree LeafSpec deprecation)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            torch.manual_seed(seed)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        torch.use_deterministic_algorithms(det, warn_only=det_warn)
        torch.backends.cudnn.benchmark = benchmark
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas


def finetune_epochs(n_train: int, fit_samples: int, max_epochs: int) -> int:
    """Epochs for a fine-tune that sees about `fit_samples` examples, within 1..max_epochs.

    Why a budget of examples, not of epochs: the dataset grows with every label, so a fixed
    epoch count makes each retrain slower than the last and over-fits the small early sets.
    `fit_samples` = 0 keeps the fixed `max_epochs`.

    >>> finetune_epochs(600, 6000, 15), finetune_epochs(100, 6000, 15), finetune_epochs(9000, 6000, 15)
    (10, 15, 1)
    >>> finetune_epochs(600, 0, 15)
    15
    """
    if fit_samples <= 0:
        return max_epochs
    return int(min(max_epochs, max(1, round(fit_samples / max(n_train, 1)))))


def _check_inputs(task: Task, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if len(x) == 0:
        raise ValueError("x is empty: there is nothing to train on; label some examples first")
    if tuple(x.shape[1:]) != tuple(task.input_shape):
        raise ValueError(
            f"x has shape {x.shape}, task {task.name!r} takes (N, {', '.join(map(str, task.input_shape))}): "
            "decode inputs with task.decode_inputs"
        )
    if y.shape != (len(x),):
        raise ValueError(
            f"y has shape {y.shape}, x has {len(x)} rows: give one class index per row"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y has dtype {y.dtype}: give class indices (task.class_index(name)), not names"
        )
    bad = y[(y < 0) | (y >= task.n_classes)]
    if len(bad):
        raise ValueError(
            f"y has label {int(bad[0])}, outside the {task.n_classes} classes of task {task.name!r} "
            f"(0..{task.n_classes - 1}): map labels with task.class_index"
        )
    return x, y.astype(np.int64)


def _module(task: Task, lr: float) -> pl.LightningModule:
    """The LightningModule of a fit: the task's own (`recipe.module`) or the shared one."""
    recipe = task.recipe
    if recipe is None:
        return Classifier(task, lr=lr)
    if recipe.module is None:
        return Classifier(
            task,
            lr=lr,
            optimizer=recipe.optimizer,
            weight_decay=recipe.weight_decay,
            log_loss=recipe.early_stopping_patience > 0,
        )
    module = recipe.module(task, recipe)
    if not isinstance(module, pl.LightningModule) or not isinstance(
        getattr(module, "model", None), torch.nn.Module
    ):
        raise ValueError(
            f"task {task.name!r}: recipe.module returned a {type(module).__name__}: return a "
            "LightningModule holding the network as `.model` (what the registry saves)"
        )
    return module


def _check_outputs(task: Task, net: torch.nn.Module, x: np.ndarray) -> None:
    """The network must give one logit per class: said before any epoch is spent."""
    was = net.training
    net.eval()  # no dropout: the check draws nothing from the seeded RNG
    try:
        with torch.inference_mode():
            out = net(torch.tensor(x[:1]))
    finally:
        net.train(was)
    if out.ndim != 2 or out.shape[1] != task.n_classes:
        raise ValueError(
            f"task {task.name!r}: build_model() gives outputs of shape {tuple(out.shape)} for "
            f"one input, the task has {task.n_classes} classes {list(task.classes)}: make its "
            f"last layer give (N, {task.n_classes}) logits, in the order of task.classes"
        )


def fit(
    task: Task,
    x: np.ndarray,
    y: np.ndarray,
    *,
    init_state: Mapping[str, torch.Tensor] | None = None,
    max_epochs: int = 40,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = False,
    weights: np.ndarray | None = None,
    threads: int = THREADS,
) -> FitResult:
    """Train `task.build_model()` on inputs x `(N, *input_shape)` and class indices y.

    With `init_state` (e.g. the champion's weights) training starts from those weights:
    fine-tuning. The same arguments give the same weights, bit for bit, whatever the caller's
    torch thread setting: the fit runs on `threads` threads. `weights` (one per row, >= 0)
    makes each epoch draw N rows with replacement in proportion to them, so a few hundred
    labels from today's traffic are not drowned by thousands of older rows.
    """
    x, y = _check_inputs(task, x, y)
    recipe = task.recipe
    if recipe is not None:  # the task's own recipe wins over [retrain] where it says
        if recipe.scratch:
            init_state = None
        chosen = recipe.max_epochs if init_state is None else recipe.finetune_epochs
        max_epochs = chosen or max_epochs
        lr = recipe.lr or lr
        batch_size = recipe.batch_size or batch_size
    sampler = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(y),) or not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
            raise ValueError(
                f"weights has shape {w.shape} for {len(y)} rows: pass one finite weight >= 0 "
                "per row, not all 0"
            )
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.tensor(w),
            num_samples=len(y),
            replacement=True,
            generator=torch.Generator().manual_seed(seed),
        )
    if max_epochs < 1 or batch_size < 1:
        raise ValueError(f"max_epochs = {max_epochs}, batch_size = {batch_size}: both must be >= 1")
    started = time.perf_counter()
    with (
        fixed_threads(threads),
        _quiet_and_contained(seed),
        tempfile.TemporaryDirectory(prefix="loopwright-fit-") as root,
    ):
        module = _module(task, lr)
        _check_outputs(task, module.model, x)
        if init_state is None and recipe is not None and recipe.prepare is not None:
            recipe.prepare(module.model, x, y)
        if init_state is not None:
            try:
                module.model.load_state_dict(init_state, strict=True)
            except RuntimeError as exc:
                raise ValueError(
                    f"init_state does not fit task {task.name!r}'s model ({exc}): "
                    "fine-tune from a model version of the same task"
                ) from None
        loader = DataLoader(
            TensorDataset(torch.tensor(x), torch.tensor(y)),
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=None if sampler is not None else torch.Generator().manual_seed(seed),
        )
        callbacks = []
        if recipe is not None and recipe.early_stopping_patience > 0:
            from pytorch_lightning.callbacks import EarlyStopping

            callbacks.append(
                EarlyStopping(
                    monitor="train_loss",
                    patience=recipe.early_stopping_patience,
                    mode="min",
                    min_delta=1e-4,
                    check_on_train_epoch_end=True,
                )
            )
        trainer = pl.Trainer(
            callbacks=callbacks,
            accelerator="cpu",
            devices=1,
            max_epochs=max_epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            deterministic=True,
            default_root_dir=root,  # nothing should be written; if it is, it goes away
        )
        trainer.fit(module, train_dataloaders=loader)
        epochs = int(trainer.current_epoch)
        net = module.model
        probs = predict_proba(net, x, threads=threads)
    picked = probs[np.arange(len(y)), y]
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return FitResult(
        state_dict=state,
        epochs=epochs,
        train_loss=float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        train_accuracy=float((probs.argmax(axis=1) == y).mean()),
        seconds=time.perf_counter() - started,
        n_train=len(y),
    )
