"""Regularization: weight penalties as pure functions, weight decay two ways, and early stopping.

Total loss = loss + lambda * R(W), with the slides' penalties

    L2 (ridge, "weight decay")   R(W) = sum W^2
    L1 (lasso)                   R(W) = sum |W|
    elastic net (L1 + L2)        R(W) = sum beta W^2 + |W|

Penalties apply to weights, not to biases or normalization parameters (``decay_parameters``): a bias shifts a
unit and does not add capacity the way a large weight does.

For plain SGD, a penalty (lambda / 2) * sum W^2 in the loss and ``SGD(weight_decay=lambda)`` take exactly the same
steps: both add lambda * W to the gradient. ``weight_decay_paths`` measures that; with Adam-style optimizers the
two differ once decoupled decay is used (AdamW, Loshchilov & Hutter 2019).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

Params = Iterable[torch.Tensor]


def l2_penalty(params: Params) -> torch.Tensor:
    """sum of W^2 over all ``params`` (a 0-d tensor that carries gradients)."""
    return _total(p.pow(2).sum() for p in params)


def l1_penalty(params: Params) -> torch.Tensor:
    """sum of |W| over all ``params``; its gradient sign(W) pushes small weights to exactly 0 (sparsity)."""
    return _total(p.abs().sum() for p in params)


def elastic_net_penalty(params: Params, beta: float = 1.0) -> torch.Tensor:
    """sum of beta W^2 + |W| (the slides' form): beta -> 0 is the lasso, large beta is mostly ridge."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return _total((beta * p.pow(2) + p.abs()).sum() for p in params)


def _total(terms) -> torch.Tensor:
    total = None
    for t in terms:
        total = t if total is None else total + t
    return total if total is not None else torch.zeros(())


PENALTIES: dict[str, Callable[[Params], torch.Tensor]] = {
    "l2": l2_penalty,
    "l1": l1_penalty,
    "elastic_net": elastic_net_penalty,
}


def get_penalty(name: str) -> Callable[[Params], torch.Tensor]:
    if name not in PENALTIES:
        raise ValueError(f"unknown penalty {name!r}; valid penalties: {', '.join(PENALTIES)}")
    return PENALTIES[name]


def decay_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The weights of Linear/Conv layers (tensors with 2 or more dims): what a penalty should act on."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


def penalized(loss_fn: Callable, params: Params, penalty: str = "l2", lam: float = 1e-4) -> Callable:
    """``loss_fn(out, y) + lam * R(params)`` as a new loss function, ready for ``fit(loss_fn=...)``.

    ``params`` is kept as a list, so the penalty sees the current values at every step.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    fn, params = get_penalty(penalty), list(params)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(out, y) + lam * fn(params)

    loss.__name__ = f"{getattr(loss_fn, '__name__', 'loss')}+{lam:g}*{penalty}"
    return loss


def weight_decay_paths(make_model: Callable[[], nn.Module], batches: list[tuple[torch.Tensor, torch.Tensor]], *,
                       loss_fn: Callable, weight_decay: float, lr: float, optimizer: str = "sgd",
                       momentum: float = 0.0) -> dict[str, float]:
    """Train two identical models on the same batches: one with (wd / 2) * sum W^2 in the loss, one with the
    optimizer's ``weight_decay=wd``. Both decay every parameter, as the optimizer does.

    Returns ``max_abs_diff`` between the final parameters, and ``weight_norm`` of each and of an undecayed run,
    so the check also shows that decay did something. ``optimizer`` is "sgd", "adam" or "adamw".
    """
    makers = {"sgd": lambda p, wd: torch.optim.SGD(p, lr=lr, momentum=momentum, weight_decay=wd),
              "adam": lambda p, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd),
              "adamw": lambda p, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd)}
    if optimizer not in makers:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid optimizers: {', '.join(makers)}")
    base = make_model()
    models = {name: copy.deepcopy(base) for name in ("penalty", "optimizer", "none")}
    opts = {"penalty": makers[optimizer](models["penalty"].parameters(), 0.0),
            "optimizer": makers[optimizer](models["optimizer"].parameters(), weight_decay),
            "none": makers[optimizer](models["none"].parameters(), 0.0)}
    for x, y in batches:
        for name, model in models.items():
            loss = loss_fn(model(x), y)
            if name == "penalty":
                loss = loss + 0.5 * weight_decay * l2_penalty(model.parameters())
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
    flat = {k: torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for k, m in models.items()}
    return {"max_abs_diff": float((flat["penalty"] - flat["optimizer"]).abs().max()),
            **{f"weight_norm_{k}": float(v.norm()) for k, v in flat.items()}}


class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs, and put the best weights back.

    Use as fit's hook: ``stopper = EarlyStopping(model, patience=5); fit(..., on_epoch=stopper); stopper.restore()``.
    It returns True (stop) after ``patience`` epochs without an improvement larger than ``min_delta``, restoring
    the best state right then. Call ``restore()`` after fit as well, for runs that reached the last epoch.
    """

    def __init__(self, model: nn.Module, patience: int = 5, monitor: str = "val_loss", mode: str = "min",
                 min_delta: float = 0.0):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.model, self.patience, self.monitor, self.mode, self.min_delta = model, patience, monitor, mode, min_delta
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.waited = 0

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def __call__(self, epoch: int, history) -> bool:
        value = history[self.monitor][-1]
        if self.improved(value):
            self.best_value, self.best_epoch, self.waited = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return False
        self.waited += 1
        if self.waited >= self.patience:
            self.stopped_epoch = epoch
            self.restore()
            return True
        return False

    def state_dict(self) -> dict:
        """The stopper's progress and best weights: fit checkpoints a hook that has this, so a resumed run
        (``esc-course lab run NAME --resume``) stops and restores exactly as the uninterrupted one."""
        return {"best_value": self.best_value, "best_epoch": self.best_epoch, "waited": self.waited,
                "stopped_epoch": self.stopped_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_value, self.best_epoch, self.waited = state["best_value"], state["best_epoch"], state["waited"]
        self.stopped_epoch, self.best_state = state["stopped_epoch"], state["best_state"]

    def restore(self) -> nn.Module:
        """Load the best weights seen so far into the model (no-op before the first epoch); returns the model."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.model
