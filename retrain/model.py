"""The generic Lightning module and inference helpers, for any `Task`.

Why generic: the task supplies the network (`build_model`); the loss, optimiser and
inference code are the same for every classifier the loop serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from retrain.task import Task

#: intra-op threads for fitting and scoring. Why fixed: on CPU a reduction split over k
#: threads adds in another order than over 1, so the same fit gives different weights with
#: 1 and 2 threads (measured here: other weights after 3 epochs on the digits seed set), and
#: 2-thread scores of the same rows differ in the last bits with the batch size. A fixed
#: count makes the result a function of the inputs, not of the caller's `torch` setting or
#: the machine's core count: the demo and a benchmark worker then train the same weights.
THREADS = 1


_threads_lock = threading.Lock()
_threads_users = 0  # blocks inside fixed_threads now (several threads may score at once)
_threads_before = 0  # the count to restore when the last of them leaves


@contextmanager
def fixed_threads(n: int = THREADS) -> Iterator[None]:
    """Run the block on exactly `n` torch intra-op threads, then restore the caller's count.

    Torch's thread count is per process: when several threads are inside at once (a server
    scoring requests in parallel), the count set by the first is restored when the last
    leaves, so none of them resets it under another.

    >>> before = torch.get_num_threads()
    >>> with fixed_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    global _threads_users, _threads_before
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads = {n!r}: use a whole number >= 1, e.g. 1")
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
        _threads_users += 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0 and torch.get_num_threads() != _threads_before:
                torch.set_num_threads(_threads_before)


class Classifier(pl.LightningModule):
    """`task.build_model()` trained with cross-entropy and Adam.

    `batch` is `(x, y)`: float inputs `(B, *task.input_shape)` and class indices `(B,)`.
    """

    def __init__(
        self,
        task: Task,
        lr: float = 3e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        log_loss: bool = False,
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise ValueError(f"lr = {lr}: the learning rate must be > 0, e.g. 3e-3")
        self.model: nn.Module = task.build_model()
        self.lr = lr
        self.optimizer, self.weight_decay = optimizer, weight_decay
        self.log_loss = log_loss  # early stopping reads the epoch's `train_loss`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.model(x), y)
        if self.log_loss:
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params, kw = self.model.parameters(), {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, **kw)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, momentum=0.9, **kw)
        return torch.optim.Adam(params, **kw)


def predict_proba(
    module: nn.Module, x: np.ndarray, batch_size: int = 1024, threads: int = THREADS
) -> np.ndarray:
    """Class probabilities `(N, C)` float32 (rows sum to 1) for inputs `(N, *input_shape)`.

    Runs in eval mode without gradients, in chunks of `batch_size` rows so memory stays flat,
    on `threads` torch threads (see `THREADS`: the same rows get the same bits whatever the
    caller's thread setting); the module's mode and the thread count are restored afterwards.
    """
    x = np.array(x, dtype=np.float32)  # a copy: torch refuses to wrap read-only arrays quietly
    if x.ndim < 2:
        raise ValueError(
            f"x has shape {x.shape}: pass a batch (N, *input_shape); for one input use x[None]"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be >= 1")
    was_training = module.training
    module.eval()
    chunks: list[np.ndarray] = []
    try:
        with fixed_threads(threads), torch.inference_mode():
            # max(..., 1): an empty x still runs once, giving a (0, C) array of the right width
            for start in range(0, max(len(x), 1), batch_size):
                logits = module(torch.from_numpy(x[start : start + batch_size]))
                chunks.append(torch.softmax(logits.double(), dim=1).float().numpy())
    finally:
        module.train(was_training)
    return np.concatenate(chunks)


def load_module(task: Task, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """A fresh `task.build_model()` with these weights, in eval mode, ready for predict_proba."""
    module = task.build_model()
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"these weights do not fit task {task.name!r}'s model ({exc}): "
            "load a model version trained for this task"
        ) from None
    return module.eval()


def predictor(
    task: Task, state_dict: Mapping[str, torch.Tensor], threads: int = THREADS
) -> Callable[[np.ndarray], np.ndarray]:
    """predict_proba of these weights on `threads` threads, as one callable: what the loop
    and the server keep per registry version (weights never change, so the module is kept)."""
    module = load_module(task, state_dict)

    def predict(x: np.ndarray) -> np.ndarray:
        return predict_proba(module, x, threads=threads)

    return predict
