"""Dropout from scratch (Srivastava et al. 2014), the "inverted" form that torch.nn.Dropout uses.

In training every value is kept with probability 1 - p and then divided by 1 - p, so its expectation is
unchanged: E[mask * x / (1 - p)] = x. Because the scaling happens in training, evaluation is the identity and
needs no rescaling. Each mask is one sub-network; training averages an ensemble that shares its weights.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p}")


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, *, device=None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A float mask of ``shape``: 1 / (1 - p) where a value is kept (probability 1 - p), 0 where dropped."""
    _check_p(p)
    if p == 1.0:
        return torch.zeros(shape, device=device)
    keep = torch.rand(shape, device=device, generator=generator) >= p
    return keep.float() / (1.0 - p)


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each value of ``x`` with probability ``p`` and scale the rest by 1 / (1 - p); identity if not training."""
    _check_p(p)
    if not training or p == 0.0:
        return x
    return x * dropout_mask(x.shape, p, device=x.device, generator=generator).to(x.dtype)


class Dropout(nn.Module):
    """``torch.nn.Dropout`` from scratch: random zeros and 1 / (1 - p) scaling in train mode, identity in eval."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        _check_p(p)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
