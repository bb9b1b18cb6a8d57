"""Weight initialization by name: ``init_weights(model, "he")``.

Every Linear and Conv layer's weight is drawn by the scheme and its bias set to zero; other layers (norms,
PReLU) keep their own defaults. The classic comparison (Glorot & Bengio 2010; He et al. 2015):

- ``normal_0.01``: N(0, 0.01^2). Too small for a deep net: activations shrink layer by layer toward 0.
- ``normal_1``: N(0, 1). Too large: tanh saturates at +-1, ReLU activations grow by about sqrt(fan_in / 2) per layer.
- ``xavier``: Var(W) = 2 / (fan_in + fan_out), keeps the variance of tanh (near-linear at 0) nets constant.
- ``he``: Var(W) = 2 / fan_in, makes up for ReLU zeroing half of its inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Init = Callable[[torch.Tensor], None]


def _normal(std: float) -> Init:
    def init(w: torch.Tensor) -> None:
        nn.init.normal_(w, mean=0.0, std=std)

    return init


SCHEMES: dict[str, Init] = {
    "normal_0.01": _normal(0.01),
    "normal_1": _normal(1.0),
    "xavier": nn.init.xavier_normal_,             # std = sqrt(2 / (fan_in + fan_out))
    "xavier_uniform": nn.init.xavier_uniform_,    # U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    "he": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),    # std = sqrt(2 / fan_in)
    "he_uniform": lambda w: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),
    "lecun": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="linear"),  # std = 1 / sqrt(fan_in)
}

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def init_weights(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialize every Linear/Conv weight of ``model`` in place by ``scheme``; biases become 0.

    ``scheme`` is a name in ``SCHEMES`` or ``"pytorch"`` (each layer's own ``reset_parameters``).
    Returns the model, so ``init_weights(MLP(...), "he")`` reads as one expression.
    """
    if scheme != "pytorch" and scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid schemes: {', '.join([*SCHEMES, 'pytorch'])}")
    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, _LAYERS):
                continue
            if scheme == "pytorch":
                layer.reset_parameters()
                continue
            SCHEMES[scheme](layer.weight)
            if layer.bias is not None:
                layer.bias.zero_()
    return model
