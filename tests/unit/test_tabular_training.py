"""The tabular model: its own recipe, its scale fixed at training time, its expectations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from retrain.model import load_module, predict_proba
from retrain.tabular.expectations import salary_directional, zipcode_invariance
from retrain.tabular.scenario import parse_scenario
from retrain.tabular.schema import N_INPUT, OFFSETS
from retrain.tabular.simulation import TabularSimulation
from retrain.tabular.task import TASK
from retrain.training import fit

SCENARIO = {
    "name": "t",
    "seed": 2,
    "batch_size": 20,
    "phase": [{"batches": 1, "concept": 0}],
}


@pytest.fixture(scope="module")
def world():
    return TabularSimulation().world(parse_scenario(SCENARIO), 2, 400, 10)


@pytest.fixture(scope="module")
def trained(world):
    seed = world.seed_examples
    x = TASK.decode_inputs(seed.inputs)
    y = np.array([TASK.class_index(c) for c in seed.labels])
    return x, y, fit(TASK, x, y, seed=0)


def test_scratch_fit_fixes_the_scale_from_the_training_rows(trained):
    x, _, result = trained
    np.testing.assert_allclose(result.state_dict["scale.mean"].numpy(), x[:, :6].mean(0), rtol=1e-4)
    assert result.epochs <= TASK.recipe.max_epochs  # early stopping may end it sooner
    # a fine-tune keeps the champion's scale, whatever its rows
    shifted = x.copy()
    shifted[:, 0] += 50000
    again = fit(TASK, shifted[:50], trained[1][:50], init_state=result.state_dict, seed=0)
    torch.testing.assert_close(again.state_dict["scale.mean"], result.state_dict["scale.mean"])


def test_trained_model_learns_concept_0_and_passes_its_expectations(world, trained):
    _, _, result = trained
    module = load_module(TASK, result.state_dict)
    hx, hy = world.heldout(0)
    assert float((predict_proba(module, hx).argmax(1) == hy).mean()) > 0.85
    for e in TASK.expectations:
        r = e.run(lambda a: predict_proba(module, a), hx, hy)
        assert r.passed, r.detail


class SalaryHater(nn.Module):
    """P(class_0) falls as salary rises: what the directional test must catch."""

    def forward(self, x):
        z = (x[:, 0] - 85000.0) / 10000.0
        return torch.stack([-z, z], dim=1)


class ZipcodeReader(nn.Module):
    """Answers from the zipcode alone: what the invariance test must catch."""

    def forward(self, x):
        odd = x[:, OFFSETS["zipcode"] + 1 : OFFSETS["zipcode"] + 9 : 2].sum(1)
        return torch.stack([odd * 4 - 2, 2 - odd * 4], dim=1)


def test_expectations_fail_on_models_that_break_them(world):
    hx, hy = world.heldout(0)
    salary = salary_directional().run(lambda a: predict_proba(SalaryHater(), a), hx, hy)
    assert not salary.passed and salary.value < 0.8
    zipcode = zipcode_invariance().run(lambda a: predict_proba(ZipcodeReader(), a), hx, hy)
    assert not zipcode.passed and zipcode.value < 0.7
    # and each passes on the model that breaks only the other
    assert zipcode_invariance().run(lambda a: predict_proba(SalaryHater(), a), hx, hy).passed
    assert salary_directional().run(lambda a: predict_proba(ZipcodeReader(), a), hx, hy).passed


def test_recipe_wins_over_retrain_settings(trained):
    x, y, _ = trained
    short = dataclasses.replace(
        TASK, recipe=dataclasses.replace(TASK.recipe, max_epochs=2, early_stopping_patience=0)
    )
    assert fit(short, x[:64], y[:64], max_epochs=40, seed=0).epochs == 2


def test_wrong_output_width_is_named_before_training(trained):
    x, y, _ = trained
    three = dataclasses.replace(TASK, build_model=lambda: nn.Linear(N_INPUT, 3))
    with pytest.raises(ValueError, match=r"gives outputs of shape \(1, 3\).*2 classes"):
        fit(three, x[:10], y[:10], seed=0)


def test_a_task_brings_its_own_lightning_module(trained):
    import pytorch_lightning as pl

    x, y, _ = trained
    seen = []

    class Mine(pl.LightningModule):
        def __init__(self, task, recipe):
            super().__init__()
            self.model = task.build_model()

        def training_step(self, batch, i):
            seen.append(i)
            xb, yb = batch
            return nn.functional.cross_entropy(self.model(xb), yb)

        def configure_optimizers(self):
            return torch.optim.SGD(self.model.parameters(), lr=0.01)

    own = dataclasses.replace(
        TASK,
        recipe=dataclasses.replace(
            TASK.recipe, module=Mine, max_epochs=1, early_stopping_patience=0
        ),
    )
    assert fit(own, x[:64], y[:64], seed=0).epochs == 1
    assert len(seen) == 2  # 64 rows in batches of 32
    bad = dataclasses.replace(TASK, recipe=dataclasses.replace(TASK.recipe, module=lambda t, r: 3))
    with pytest.raises(
        ValueError, match="return a LightningModule holding the network as `.model`"
    ):
        fit(bad, x[:10], y[:10], seed=0)
