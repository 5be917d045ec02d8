"""A small CNN for 8x8 digits: big enough to reach ~97% on clean digits, small enough
to train from scratch in seconds on two CPU cores (the loop retrains often)."""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """(N, 1, 8, 8) float in 0..1 -> (N, 10) logits. conv16 - conv32 - pool - fc64 - fc10."""

    def __init__(self, n_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
