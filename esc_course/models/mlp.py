"""Multi-layer perceptron with explicit keyword arguments (no CLI namespace)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from esc_course.models.activations import get_activation


class MLP(nn.Sequential):
    """Linear -> [BatchNorm] -> activation -> [Dropout], repeated, then a Linear output layer.

    ``MLP(2, hidden=(), out_features=1)`` is a single-layer perceptron (one Linear layer).
    Inputs of shape (N, ...) are flattened to (N, in_features).
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (64,), out_features: int = 1, *,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False, maxout_pieces: int = 2):
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"MLP sizes must be positive, got in_features={in_features}, hidden={tuple(hidden)}, "
                             f"out_features={out_features}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        pieces = maxout_pieces if activation == "maxout" else 1
        for h in hidden:
            layers.append(nn.Linear(width, h * pieces))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h * pieces))
            layers.append(get_activation(activation, **({"pieces": pieces} if pieces > 1 else {})))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim > 2:
            x = x.flatten(1)
        if x.ndim != 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"MLP expects input of shape (N, {self.in_features}) (or (N, ...) that flattens to it), "
                             f"got {tuple(x.shape)}")
        return super().forward(x)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
