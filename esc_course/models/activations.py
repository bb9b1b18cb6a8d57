"""Activation functions by name, one plain dict (sigmoid, tanh, ReLU, Leaky ReLU, PReLU, ELU, GELU, Maxout)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Maxout(nn.Module):
    """Maxout (Goodfellow et al. 2013): the max over ``pieces`` linear pieces.

    Takes (..., C * pieces) features -> (..., C); the layer before it must produce ``pieces`` times as many
    features. ReLU is the special case max(w1 x, 0) of two pieces.
    """

    def __init__(self, pieces: int = 2):
        super().__init__()
        if pieces < 2:
            raise ValueError(f"Maxout needs pieces >= 2, got {pieces}")
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, features = x.shape
        if features % self.pieces:
            raise ValueError(f"Maxout(pieces={self.pieces}) got {features} features, not a multiple of {self.pieces}")
        return x.reshape(*lead, features // self.pieces, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda negative_slope=0.01: nn.LeakyReLU(negative_slope),
    "prelu": lambda num_parameters=1, init=0.25: nn.PReLU(num_parameters, init),
    "elu": lambda alpha=1.0: nn.ELU(alpha),
    "gelu": nn.GELU,
    "maxout": lambda pieces=2: Maxout(pieces),
    "identity": nn.Identity,
}


def get_activation(name: str, **kwargs) -> nn.Module:
    """A new activation module by name; an unknown name lists the valid ones."""
    key = name.lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key](**kwargs)


def activation_curves(names=None, lo: float = -5.0, hi: float = 5.0, n: int = 401):
    """Each activation and its derivative on [lo, hi] as 1-D functions (for plots and tests).

    Maxout is shown with two pieces x and 0.2 x, i.e. max(x, 0.2 x). Returns {name: (x, f(x), f'(x))}.
    """
    x = torch.linspace(lo, hi, n)
    curves = {}
    for name in names or [k for k in ACTIVATIONS if k != "identity"]:
        xs = x.clone().requires_grad_(True)
        if name == "maxout":
            y = get_activation("maxout")(torch.stack([xs, 0.2 * xs], dim=-1).reshape(n, 2)).reshape(n)
        else:
            y = get_activation(name)(xs)
        (grad,) = torch.autograd.grad(y.sum(), xs)
        curves[name] = (x, y.detach(), grad)
    return curves
