"""A small MLP for Agrawal records, and the recipe that trains it.

Why standardise inside the network: the statistics are fixed when the model is first
trained (`fix_scale`, the recipe's `prepare`) and live in its state dict as buffers, so the
registry, serving and every fine-tune use the scale the weights were learned with; a
fine-tune starts from the champion's buffers and never moves them.

Why its own recipe: the shared one (Adam at 3e-3, `[retrain]` epochs, a fine-tune budget of
about 6000 examples) was written for the digits CNN; this MLP needs more passes over a few
hundred labeled rows to move a decision boundary after a concept switch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from retrain.tabular.schema import N_INPUT, N_NUMERIC, REFERENCE_MEAN, REFERENCE_STD
from retrain.task import TrainingRecipe

HIDDEN = 64
DROPOUT = 0.1


class Standardize(nn.Module):
    """(x - mean) / std on the first `n` columns; the one-hot columns pass through."""

    def __init__(self, n: int = N_NUMERIC) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("mean", torch.tensor(REFERENCE_MEAN, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(REFERENCE_STD, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num = (x[:, : self.n] - self.mean) / self.std
        return torch.cat([num, x[:, self.n :]], dim=1)


class TabularMLP(nn.Module):
    """(N, 40) records (numeric in natural units, then one-hots) -> (N, 2) logits."""

    def __init__(self, n_classes: int = 2, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.scale = Standardize()
        self.net = nn.Sequential(
            nn.Linear(N_INPUT, hidden),
            nn.ReLU(),
            nn.Dropout(DROPOUT),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.scale(x))


def fix_scale(model: nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    """Set the model's standardisation from the training rows (a fit from scratch)."""
    num = np.asarray(x, dtype=np.float64)[:, :N_NUMERIC]
    std = num.std(axis=0)
    std = np.where(std > 1e-6, std, REFERENCE_STD)  # a constant column keeps the reference
    with torch.no_grad():
        model.scale.mean.copy_(torch.tensor(num.mean(axis=0), dtype=torch.float32))
        model.scale.std.copy_(torch.tensor(std, dtype=torch.float32))


RECIPE = TrainingRecipe(
    max_epochs=60,
    finetune_epochs=40,
    lr=1e-2,
    batch_size=32,
    optimizer="adamw",
    weight_decay=1e-2,
    early_stopping_patience=6,
    prepare=fix_scale,
)
