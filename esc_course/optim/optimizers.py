"""The optimizers of the course, from scratch: SGD (+ momentum, Nesterov), AdaGrad, AdaDelta, RMSProp, Adam, AdamW.

Each is a ``torch.optim.Optimizer`` subclass with torch.optim's constructor arguments and defaults, so it drops into
``fit`` (or any training loop) in place of torch's. Each ``step()`` is the update rule as the slides write it, one
line per line of the algorithm box; the notation in the comments is:

    g      the gradient dL/dθ of the current mini-batch         θ      a parameter tensor
    η      the learning rate (``lr``)                            t      the step count, from 1

tests/test_optimizers.py runs every optimizer here against torch.optim on the same model, data and seed for 200
steps over a grid of hyperparameters and requires the parameters to agree to 1e-5.

Choose by name with ``OPTIMIZERS`` / ``get_optimizer`` (the slides' names: sgd, momentum, nesterov, adagrad, adadelta,
rmsprop, adam, adamw).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch.optim import Optimizer

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _check(name: str, value: float, low: float = 0.0, high: float | None = None, high_open: bool = False) -> None:
    """Raise ValueError naming the argument when ``value`` is outside [low, high] (or [low, high))."""
    bad = not isinstance(value, (int, float)) or isinstance(value, bool) or value != value or value < low
    if high is not None and not bad:
        bad = value >= high if high_open else value > high
    if bad:
        valid = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number {valid}, got {value!r}")


class _FromScratch(Optimizer):
    """What every optimizer here shares: the closure call, and the loop over parameters that have a gradient."""

    def _gradients(self) -> Iterator[tuple[dict[str, Any], torch.Tensor, torch.Tensor, dict[str, Any]]]:
        """Yield (group, θ, g, state) for every parameter with a gradient; g is negated under ``maximize``."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                g = -p.grad if group["maximize"] else p.grad
                yield group, p, g, self.state[p]

    @staticmethod
    def _loss(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()


class SGD(_FromScratch):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Plain:     θ ← θ - η g
    Momentum:  v ← μ v + (1 - dampening) g;  θ ← θ - η v           (v starts as the first g; "rho" on the slides)
    Nesterov:  θ ← θ - η (g + μ v)   the look-ahead form after the slides' change of variables θ~ = θ + μ v
               (Sutskever et al. 2013, "On the importance of initialization and momentum in deep learning").
    ``weight_decay`` adds the L2 penalty's gradient λθ to g.
    """

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        _check("lr", lr)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={momentum!r}, "
                             f"dampening={dampening!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._loss(closure)
        for group, p, g, state in self._gradients():
            mu = group["momentum"]
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p                  # L2 penalty: d/dθ (λ/2 |θ|²) = λθ
            if mu != 0:
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.clone()           # v_1 = g_1
                else:
                    v = state["momentum_buffer"]
                    v.mul_(mu).add_(g, alpha=1 - group["dampening"])   # v ← μ v + (1 - dampening) g
                v = state["momentum_buffer"]
                g = g + mu * v if group["nesterov"] else v         # Nesterov looks one momentum step ahead
            p.add_(g, alpha=-group["lr"])                          # θ ← θ - η g
        return loss


class Adagrad(_FromScratch):
    """AdaGrad (Duchi et al. 2011): every coordinate gets its own step, shrinking with its squared-gradient sum.

        h ← h + g ⊙ g;   θ ← θ - η g / (√h + ε)

    Coordinates that were updated a lot move less, rarely updated ones move more; h only grows, so the step
    only shrinks (what AdaDelta and RMSProp fix). ``lr_decay`` divides η by 1 + (t - 1) lr_decay.
    """

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False):
        for name, value in dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                initial_accumulator_value=initial_accumulator_value, eps=eps).items():
            _check(name, value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._loss(closure)
        for group, p, g, state in self._gradients():
            if not state:
                state["step"] = 0
                state["sum"] = torch.full_like(p, group["initial_accumulator_value"])
            state["step"] += 1
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p
            lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
            h = state["sum"]
            h.addcmul_(g, g)                                       # h ← h + g ⊙ g
            p.addcdiv_(g, h.sqrt() + group["eps"], value=-lr)      # θ ← θ - η g / (√h + ε)
        return loss


class Adadelta(_FromScratch):
    """AdaDelta (Zeiler 2012): RMSProp's decaying average, with the step's units fixed by a second average.

        r ← ρ r + (1 - ρ) g²                   decaying average of squared gradients (E[g²] on the slides)
        Δθ ← -√(s + ε) / √(r + ε) · g           s: decaying average of squared updates
        s ← ρ s + (1 - ρ) Δθ²
        θ ← θ + η Δθ                           (η = 1 in the paper and by default)
    """

    def __init__(self, params: Params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        _check("lr", lr)
        _check("rho", rho, 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._loss(closure)
        for group, p, g, state in self._gradients():
            rho, eps = group["rho"], group["eps"]
            if not state:
                state["step"] = 0
                state["square_avg"] = torch.zeros_like(p)         # r
                state["acc_delta"] = torch.zeros_like(p)          # s
            state["step"] += 1
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p
            r, s = state["square_avg"], state["acc_delta"]
            r.mul_(rho).addcmul_(g, g, value=1 - rho)              # r ← ρ r + (1 - ρ) g²
            delta = (s + eps).sqrt() / (r + eps).sqrt() * g        # -Δθ = √(s + ε) / √(r + ε) g
            s.mul_(rho).addcmul_(delta, delta, value=1 - rho)      # s ← ρ s + (1 - ρ) Δθ²
            p.add_(delta, alpha=-group["lr"])                      # θ ← θ + η Δθ
        return loss


class RMSprop(_FromScratch):
    """RMSProp (Tieleman and Hinton 2012): AdaGrad with a decaying average instead of a sum.

        h ← α h + (1 - α) g ⊙ g;   θ ← θ - η g / (√h + ε)

    ``centered`` divides by an estimate of the gradient's standard deviation instead, √(h - ḡ²) with
    ḡ ← α ḡ + (1 - α) g (Graves 2013); ``momentum`` μ > 0 keeps a velocity b ← μ b + g / (√h + ε), θ ← θ - η b.
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *, maximize: bool = False):
        for name, value in dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum).items():
            _check(name, value)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._loss(closure)
        for group, p, g, state in self._gradients():
            a, eps, mu = group["alpha"], group["eps"], group["momentum"]
            if not state:
                state["step"] = 0
                state["square_avg"] = torch.zeros_like(p)
                if mu > 0:
                    state["momentum_buffer"] = torch.zeros_like(p)
                if group["centered"]:
                    state["grad_avg"] = torch.zeros_like(p)
            state["step"] += 1
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p
            h = state["square_avg"]
            h.mul_(a).addcmul_(g, g, value=1 - a)                  # h ← α h + (1 - α) g ⊙ g
            if group["centered"]:
                g_avg = state["grad_avg"]
                g_avg.mul_(a).add_(g, alpha=1 - a)                 # ḡ ← α ḡ + (1 - α) g
                denom = (h - g_avg * g_avg).sqrt() + eps           # √(h - ḡ²): the gradient's std
            else:
                denom = h.sqrt() + eps
            if mu > 0:
                b = state["momentum_buffer"]
                b.mul_(mu).addcdiv_(g, denom)                      # b ← μ b + g / (√h + ε)
                p.add_(b, alpha=-group["lr"])
            else:
                p.addcdiv_(g, denom, value=-group["lr"])           # θ ← θ - η g / (√h + ε)
        return loss


class Adam(_FromScratch):
    """Adam (Kingma and Ba 2015) = RMSProp + momentum + bias correction.

        m ← β1 m + (1 - β1) g          first moment (the momentum part)
        v ← β2 v + (1 - β2) g²         second moment (the RMSProp part)
        m̂ = m / (1 - β1^t);  v̂ = v / (1 - β2^t)      bias correction: m and v start at 0
        θ ← θ - η m̂ / (√v̂ + ε)

    ``bias_correction=False`` uses m and v as they are, to show why the correction exists: early on v is near
    0, so the first steps are (1 - β1^t) / √(1 - β2^t) times too long (about 3x at t = 1, 6.5x at t = 10 with
    the default betas). ``amsgrad`` divides by the running maximum of v (Reddi et al. 2018).
    ``decoupled_weight_decay`` shrinks θ by (1 - η λ) instead of adding λθ to g: that is AdamW.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False, bias_correction: bool = True):
        _check("lr", lr)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check("betas[0]", betas[0], 0.0, 1.0, high_open=True)
        _check("betas[1]", betas[1], 0.0, 1.0, high_open=True)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize, bias_correction=bias_correction,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = self._loss(closure)
        for group, p, g, state in self._gradients():
            (b1, b2), lr, wd = group["betas"], group["lr"], group["weight_decay"]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)            # m
                state["exp_avg_sq"] = torch.zeros_like(p)         # v
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * wd)                                # AdamW: decay θ itself, not through g
            elif wd:
                g = g + wd * p
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.mul_(b1).add_(g, alpha=1 - b1)                       # m ← β1 m + (1 - β1) g
            v.mul_(b2).addcmul_(g, g, value=1 - b2)                # v ← β2 v + (1 - β2) g²
            if group["amsgrad"]:
                v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            if group["bias_correction"]:
                m, v = m / (1 - b1**t), v / (1 - b2**t)            # m̂, v̂
            p.addcdiv_(m, v.sqrt() + group["eps"], value=-lr)      # θ ← θ - η m̂ / (√v̂ + ε)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019): θ ← θ (1 - η λ), then the Adam step.

    With Adam's L2 penalty the decay λθ is divided by √v̂ like the gradient, so weights with large gradients are
    barely decayed; decoupling decays every weight at the same rate. torch's default λ = 0.01 is kept.
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 bias_correction: bool = True):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, bias_correction=bias_correction)


def _momentum(params: Params, momentum: float = 0.9, **kwargs) -> SGD:
    return SGD(params, momentum=momentum, **kwargs)


def _nesterov(params: Params, momentum: float = 0.9, **kwargs) -> SGD:
    return SGD(params, momentum=momentum, nesterov=True, **kwargs)


# name -> factory(params, **hparams); the labs and the CLI choose optimizers here. "momentum" and "nesterov" are
# SGD with momentum 0.9 (the slides' rho = 0.9); every other default is torch.optim's.
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": SGD,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}

# The seven optimizers the slides compare, in the slides' order.
SLIDES = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")


def get_optimizer(name: str, params: Params, **hparams) -> Optimizer:
    """A new optimizer by name, e.g. ``get_optimizer("adam", model.parameters(), lr=1e-3)``.

    An unknown name raises ValueError listing the valid ones.
    """
    key = str(name).lower().replace("-", "_")
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    lr = hparams.get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):  # the classes, like torch, allow 0
        raise ValueError(f"lr must be a number > 0, got lr={lr!r}")
    return OPTIMIZERS[key](params, **hparams)
