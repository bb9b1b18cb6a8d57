"""How smooth is the loss along the gradient? The measurements of Santurkar et al. 2018 ("How Does Batch
Normalization Help Optimization?", NeurIPS), and their "noisy BatchNorm" control.

At parameters theta with mini-batch gradient g = grad L(theta), move along the gradient direction by step sizes
eta_1 < ... < eta_k and look at:

- loss variation: the range of L(theta - eta g) over the steps (how much the loss can change in one step);
- gradient predictiveness: || grad L(theta) - grad L(theta - eta g) ||_2 (how far the gradient we step with is
  from the gradient we will find there);
- effective beta-smoothness: max over eta of that gradient change divided by the distance moved, ||eta g||_2
  (a local Lipschitz constant of the gradient).

A smoother landscape (BatchNorm's, per the paper) has a small loss range, small gradient changes and a small beta,
which is why it tolerates larger learning rates.

To measure during training, call ``landscape_step`` in the training loop every k steps, on the batch about to be
trained on and before the optimizer steps (the paper's protocol); week 4's lab writes that loop out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from esc_course.scratch.norm import BatchNorm1d, BatchNorm2d


def _loss_and_grad(model: nn.Module, params: list[nn.Parameter], loss_fn: Callable, x, y):
    loss = loss_fn(model(x), y)
    grads = torch.autograd.grad(loss, params)
    return loss.detach(), torch.cat([g.reshape(-1) for g in grads])


def landscape_step(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor,
                   step_sizes: Sequence[float]) -> dict[str, float]:
    """The three measurements at the model's current parameters on the batch (x, y).

    Leaves the model exactly as it found it: parameters, buffers (BN running statistics) and ``.grad``.
    Returns loss, loss_min, loss_max, loss_range, grad_change_min, grad_change_max, beta (all floats).
    """
    if not step_sizes or min(step_sizes) <= 0:
        raise ValueError(f"step_sizes must be positive numbers, got {list(step_sizes)}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        loss0, g0 = _loss_and_grad(model, params, loss_fn, x, y)
        direction = g0.split([p.numel() for p in params])
        losses, changes, betas = [], [], []
        for eta in step_sizes:
            with torch.no_grad():
                for (name, p), d in zip(named, direction):
                    p.copy_(saved[name] - eta * d.reshape(p.shape))
            loss, g = _loss_and_grad(model, params, loss_fn, x, y)
            change = (g - g0).norm()
            losses.append(loss)
            changes.append(change)
            betas.append(change / (eta * g0.norm()).clamp_min(1e-12))
    finally:
        model.load_state_dict(saved)
    losses = torch.stack([loss0, *losses])
    stats = torch.stack([loss0, losses.min(), losses.max(), torch.stack(changes).min(), torch.stack(changes).max(),
                         torch.stack(betas).max()])
    loss, lo, hi, cmin, cmax, beta = stats.tolist()  # one host sync per measurement
    return {"loss": loss, "loss_min": lo, "loss_max": hi, "loss_range": hi - lo, "grad_change_min": cmin,
            "grad_change_max": cmax, "beta": beta}


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, BatchNorm1d, BatchNorm2d)  # torch.nn's and ours


class BatchNormNoise:
    """Santurkar et al.'s "noisy BatchNorm": after every BN layer, y = a * x + b with i.i.d. noise a, b per value.

    At every training forward pass each BN layer draws, per channel, a mean for b in [-mean, mean] and a mean for
    a in [1 - scale, 1 + scale]; then a ~ N(mu_a, std^2) and b ~ N(mu_b, std^2) for every sample and position. The
    layer's outputs therefore have a non-zero mean and a non-unit variance that change from step to step (a large
    "internal covariate shift"), yet the network still trains about as well as with plain BN.

    Uses forward hooks on the BN modules (removed by ``remove()`` or on leaving a ``with`` block); eval is clean.
    """

    def __init__(self, model: nn.Module, mean: float = 0.5, scale: float = 0.5, std: float = 0.1):
        self.mean, self.scale, self.std = mean, scale, std
        norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS)]
        if not norms:
            raise ValueError("the model has no BatchNorm layers to add noise after")
        self.handles = [m.register_forward_hook(self._hook) for m in norms]

    def _hook(self, module: nn.Module, inputs, out: torch.Tensor) -> torch.Tensor | None:
        if not module.training:
            return None
        c = out.shape[1]
        shape = (1, c) + (1,) * (out.ndim - 2)
        mu_b = (torch.rand(shape, device=out.device) * 2 - 1) * self.mean
        mu_a = 1 + (torch.rand(shape, device=out.device) * 2 - 1) * self.scale
        a = mu_a + self.std * torch.randn_like(out)
        b = mu_b + self.std * torch.randn_like(out)
        return a * out + b

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def __enter__(self) -> BatchNormNoise:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
