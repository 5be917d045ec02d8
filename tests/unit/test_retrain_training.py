"""fit(): reproducible, fine-tunes, validates inputs, leaves no global state behind."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from retrain.digits.data import split_digits
from retrain.digits.task import TASK
from retrain.training import fit


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    s = split_digits()
    return np.array(s.seed_x[:128, None]), np.array(s.seed_y[:128])


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_inputs_same_weights_other_seed_other_weights(small) -> None:
    x, y = small
    a = fit(TASK, x, y, max_epochs=2, seed=1)
    b = fit(TASK, x, y, max_epochs=2, seed=1)
    c = fit(TASK, x, y, max_epochs=2, seed=2)
    assert _same(a.state_dict, b.state_dict) and not _same(a.state_dict, c.state_dict)
    assert (a.epochs, a.n_train) == (2, 128) and a.seconds > 0
    assert 0.0 <= a.train_accuracy <= 1.0 and a.train_loss > 0


def test_fine_tuning_starts_from_the_given_weights(small) -> None:
    x, y = small
    base = fit(TASK, x, y, max_epochs=20)
    tuned = fit(TASK, x, y, init_state=base.state_dict, max_epochs=1, lr=1e-4)
    scratch = fit(TASK, x, y, max_epochs=1, lr=1e-4)
    assert tuned.train_accuracy >= base.train_accuracy - 0.02
    assert tuned.train_accuracy > scratch.train_accuracy + 0.3
    with pytest.raises(ValueError, match="init_state does not fit"):
        fit(TASK, x, y, init_state={"nope": torch.zeros(1)}, max_epochs=1)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_fit_is_quiet(small) -> None:
    x, y = small
    records = _Records()
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric")]
    for lg in loggers:
        lg.addHandler(records)
    try:
        fit(TASK, x, y, max_epochs=1)
    finally:
        for lg in loggers:
            lg.removeHandler(records)
    assert not [m for m in records.messages if "GPU available" in m or "Seed set" in m]


def test_fit_leaves_no_global_state_behind(small) -> None:
    x, y = small
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    level = logging.getLogger("pytorch_lightning").level
    det = torch.are_deterministic_algorithms_enabled()
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    fit(TASK, x, y, max_epochs=1)
    assert torch.equal(torch.rand(1), expected_next)  # global torch RNG untouched
    assert torch.are_deterministic_algorithms_enabled() == det
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == cublas
    assert logging.getLogger("pytorch_lightning").level == level


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((0, 1, 8, 8)), np.zeros(0, int), "x is empty"),
        (np.zeros((3, 8, 8)), np.zeros(3, int), r"task 'digits' takes \(N, 1, 8, 8\)"),
        (np.zeros((3, 1, 8, 8)), np.zeros(2, int), "one class index per row"),
        (np.zeros((3, 1, 8, 8)), np.array([0, 10, 1]), r"y has label 10, outside the 10 classes"),
        (np.zeros((3, 1, 8, 8)), np.array([0, -1, 1]), r"y has label -1"),
        (np.zeros((3, 1, 8, 8)), np.array(["0", "1", "2"]), "give class indices"),
    ],
    ids=["empty", "shape", "length", "too-big", "negative", "names"],
)
def test_fit_refuses_bad_inputs(x: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit(TASK, x, y, max_epochs=1)
