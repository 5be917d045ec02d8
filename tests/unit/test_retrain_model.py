"""The generic Lightning module, inference helpers, and the digits CNN's capacity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retrain.digits.data import split_digits
from retrain.digits.model import DigitsCNN
from retrain.digits.task import TASK
from retrain.model import Classifier, load_module, predict_proba
from retrain.training import fit


def test_cnn_maps_digits_to_ten_logits() -> None:
    assert DigitsCNN()(torch.zeros(4, 1, 8, 8)).shape == (4, 10)


def test_predict_proba_rows_sum_to_one_and_mode_is_restored() -> None:
    torch.manual_seed(0)
    net = DigitsCNN().train()
    x = np.random.default_rng(0).random((2500, 1, 8, 8), dtype=np.float32)
    p = predict_proba(net, x, batch_size=1024)  # three chunks
    assert p.shape == (2500, 10) and p.dtype == np.float32
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert net.training
    assert predict_proba(net, x[:0]).shape == (0, 10)


def test_load_module_roundtrip_and_refuses_foreign_weights() -> None:
    torch.manual_seed(0)
    net = DigitsCNN()
    x = np.random.default_rng(1).random((7, 1, 8, 8), dtype=np.float32)
    loaded = load_module(TASK, net.state_dict())
    assert not loaded.training
    assert np.allclose(predict_proba(loaded, x), predict_proba(net, x))
    with pytest.raises(ValueError, match="do not fit task 'digits'"):
        load_module(TASK, {"weight": torch.zeros(3)})


def test_classifier_wraps_the_task_model_with_adam() -> None:
    module = Classifier(TASK, lr=0.01)
    assert isinstance(module.model, DigitsCNN)
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.01
    with pytest.raises(ValueError, match="learning rate"):
        Classifier(TASK, lr=0)


def test_memorization_cnn_overfits_one_batch() -> None:
    s = split_digits()
    x, y = s.seed_x[:64, None], s.seed_y[:64]
    result = fit(TASK, x, y, max_epochs=60, batch_size=64, lr=3e-3)
    assert result.train_accuracy == 1.0
    assert result.train_loss < 0.05


@pytest.mark.slow
def test_seed_training_reads_clean_holdout() -> None:
    s = split_digits()
    result = fit(TASK, s.seed_x[:, None], s.seed_y)
    assert (result.epochs, result.n_train) == (40, 600)
    p = predict_proba(load_module(TASK, result.state_dict), s.holdout_x[:, None])
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert float(np.mean(p.argmax(axis=1) == s.holdout_y)) >= 0.93
