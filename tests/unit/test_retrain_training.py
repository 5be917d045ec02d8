"""fit(): reproducible bit for bit (whatever the caller's thread count, in any process),
fine-tunes, validates inputs, leaves no global state behind."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from retrain.digits.data import split_digits
from retrain.digits.task import TASK
from retrain.model import fixed_threads, load_module, predict_proba
from retrain.training import fit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    s = split_digits()
    return np.array(s.seed_x[:128, None]), np.array(s.seed_y[:128])


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _fits_under(threads: int, x: np.ndarray, y: np.ndarray) -> tuple[dict, dict, np.ndarray]:
    """A scratch fit, a weighted fine-tune from it and the fine-tune's scores, with the
    caller's torch set to `threads` threads (the demo's process has 2, a bench worker 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        base = fit(TASK, x, y, max_epochs=2, seed=3)
        w = np.where(np.arange(len(y)) >= len(y) - 32, 3.0, 1.0)
        tuned = fit(TASK, x, y, init_state=base.state_dict, max_epochs=1, seed=4, weights=w)
        probs = predict_proba(load_module(TASK, tuned.state_dict), x)
    finally:
        torch.set_num_threads(before)
    return base.state_dict, tuned.state_dict, probs


def test_weights_and_scores_do_not_depend_on_the_callers_thread_count(small) -> None:
    # Measured before fit fixed its thread count: 1 and 2 threads gave other weights.
    x, y = small
    one, two = _fits_under(1, x, y), _fits_under(2, x, y)
    assert _same(one[0], two[0]) and _same(one[1], two[1])
    assert np.array_equal(one[2], two[2])


def test_fixed_threads_sets_then_restores_the_count() -> None:
    before = torch.get_num_threads()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads = 0"), fixed_threads(0):
        pass


_OTHER_PROCESS = """
import sys, numpy as np, torch
torch.set_num_threads(2)
from retrain.digits.data import split_digits
from retrain.digits.task import TASK
from retrain.training import fit
s = split_digits()
x, y = np.array(s.seed_x[:128, None]), np.array(s.seed_y[:128])
state = fit(TASK, x, y, max_epochs=2, seed=3).state_dict
torch.save(state, sys.argv[1])
"""


@pytest.mark.slow  # a fresh interpreter imports torch and Lightning: ~12 s CPU
def test_another_process_trains_the_same_weights(small, tmp_path) -> None:
    """The demo trains in its own process, a benchmark in spawned workers: same bits."""
    x, y = small
    out = tmp_path / "state.pt"
    proc = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = torch.load(out, weights_only=True)
    with fixed_threads(1):  # this process on another count than the child's 2
        mine = fit(TASK, x, y, max_epochs=2, seed=3).state_dict
    assert _same(mine, theirs)


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
    threads = torch.get_num_threads()
    fit(TASK, x, y, max_epochs=1, threads=threads + 1)
    assert torch.get_num_threads() == threads
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
