"""Learning-rate schedules as pure functions of the step: ``lr = schedule(step, lr0=..., ...)``.

The step counts from 0 (the first update uses ``schedule(0)``), as torch's schedulers count ``last_epoch``. Being
plain functions, they can be plotted, tested and composed alone; ``lambda_lr`` turns one into a torch
``LambdaLR`` for ``fit(..., scheduler=...)``. tests/test_schedules.py checks each against torch's own scheduler
where torch has one (StepLR, ExponentialLR, LinearLR, CosineAnnealingLR, CyclicLR, OneCycleLR).

The slides' decays: step decay (halve every few epochs), exponential α = α0 e^(-kt), 1/t α = α0 / (1 + kt);
warmup (Goyal et al. 2017, "Accurate, Large Minibatch SGD"), cyclic learning rates (Smith 2017) to leave saddle
points by raising the rate now and then.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[..., float]


def _check_step(step: float) -> None:
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not step >= 0:
        raise ValueError(f"step must be a number >= 0, got {step!r}")


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")


def step_decay(step: int, lr0: float, step_size: int, gamma: float = 0.1) -> float:
    """lr0 · gamma^⌊step / step_size⌋: multiply by ``gamma`` every ``step_size`` steps (torch's StepLR)."""
    _check_step(step)
    _positive("step_size", step_size)
    return lr0 * gamma ** (step // step_size)


def exponential(step: int, lr0: float, k: float) -> float:
    """lr0 · e^(-k step), the slides' α = α0 e^(-kt) (torch's ExponentialLR with gamma = e^(-k))."""
    _check_step(step)
    return lr0 * math.exp(-k * step)


def inverse_time(step: int, lr0: float, k: float) -> float:
    """lr0 / (1 + k step), the slides' 1/t decay."""
    _check_step(step)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k!r}")
    return lr0 / (1 + k * step)


def linear_warmup(step: int, lr0: float, warmup_steps: int, start_factor: float = 0.0) -> float:
    """Rise linearly from start_factor · lr0 to lr0 over ``warmup_steps``, then stay (the slides' gradual warmup)."""
    _check_step(step)
    _positive("warmup_steps", warmup_steps)
    done = min(step, warmup_steps) / warmup_steps
    return lr0 * (start_factor + (1 - start_factor) * done)


def cosine(step: int, lr0: float, total_steps: int, lr_min: float = 0.0) -> float:
    """Half a cosine from lr0 down to ``lr_min`` over ``total_steps``, then ``lr_min`` (Loshchilov and Hutter 2017)."""
    _check_step(step)
    _positive("total_steps", total_steps)
    done = min(step, total_steps) / total_steps
    return lr_min + (lr0 - lr_min) * (1 + math.cos(math.pi * done)) / 2


def triangular(step: int, lr0: float, lr_max: float, half_cycle: int) -> float:
    """Cyclic learning rate (Smith 2017): up from lr0 to lr_max in ``half_cycle`` steps, down again, repeat."""
    _check_step(step)
    _positive("half_cycle", half_cycle)
    position = (step / half_cycle) % 2  # 0..2 within a cycle: up on [0, 1], down on [1, 2]
    height = position if position <= 1 else 2 - position
    return lr0 + (lr_max - lr0) * height


def one_cycle(step: int, lr0: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> float:
    """One cycle (Smith and Topin 2019), as torch's OneCycleLR with cosine annealing; ``lr0`` is the peak.

    Cosine up from lr0 / div_factor to lr0 over the first ``pct_start`` of the steps, then cosine down to
    lr0 / div_factor / final_div_factor at the last step.
    """
    _check_step(step)
    _positive("total_steps", total_steps)
    if not 0 < pct_start < 1:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
    start, low = lr0 / div_factor, lr0 / div_factor / final_div_factor
    peak_step = pct_start * total_steps - 1  # torch's phase boundary
    if peak_step <= 0:
        raise ValueError(f"pct_start * total_steps must be > 1 (a warm-up of at least one step), got "
                         f"pct_start={pct_start!r}, total_steps={total_steps!r}")
    if step <= peak_step:
        return _cosine_between(start, lr0, step / peak_step)
    return _cosine_between(lr0, low, min(1.0, (step - peak_step) / (total_steps - 1 - peak_step)))


def _cosine_between(start: float, end: float, done: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * done)) / 2


SCHEDULES: dict[str, Schedule] = {
    "step": step_decay,
    "exponential": exponential,
    "inverse_time": inverse_time,
    "warmup": linear_warmup,
    "cosine": cosine,
    "triangular": triangular,
    "one_cycle": one_cycle,
}


def get_schedule(name: str) -> Schedule:
    """A schedule function by name; an unknown name lists the valid ones."""
    key = str(name).lower().replace("-", "_")
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid schedules: {', '.join(SCHEDULES)}")
    return SCHEDULES[key]


def lambda_lr(optimizer, schedule: str | Schedule, **params):
    """A torch ``LambdaLR`` that follows ``schedule`` (a name or a function); step it once per update.

    ``lr0`` defaults to the optimizer's current learning rate. Every parameter group is scaled by the same
    factor schedule(step) / lr0, so groups with different learning rates keep their ratios.
    """
    from torch.optim.lr_scheduler import LambdaLR

    fn = get_schedule(schedule) if isinstance(schedule, str) else schedule
    lr0 = params.pop("lr0", optimizer.param_groups[0]["lr"])
    _positive("lr0", lr0)
    fn(0, lr0=lr0, **params)  # bad parameters fail here, not at the first step
    return LambdaLR(optimizer, lambda step: fn(step, lr0=lr0, **params) / lr0)


def example_params(total_steps: int, lr0: float = 0.1) -> dict[str, dict[str, float]]:
    """Full parameters (lr0 included) that show each schedule over ``total_steps``: for plots and notebooks."""
    return {
        "step": dict(lr0=lr0, step_size=max(1, total_steps // 4), gamma=0.5),
        "exponential": dict(lr0=lr0, k=3.0 / total_steps),
        "inverse_time": dict(lr0=lr0, k=10.0 / total_steps),
        "warmup": dict(lr0=lr0, warmup_steps=max(1, total_steps // 10)),
        "cosine": dict(lr0=lr0, total_steps=total_steps),
        "triangular": dict(lr0=lr0 / 10, lr_max=lr0, half_cycle=max(1, total_steps // 6)),
        "one_cycle": dict(lr0=lr0, total_steps=total_steps),
    }


def curves(total_steps: int = 100, lr0: float = 0.1) -> dict[str, list[float]]:
    """Every schedule's learning rate at steps 0..total_steps-1, with ``example_params``."""
    return {name: [SCHEDULES[name](s, **params) for s in range(total_steps)]
            for name, params in example_params(total_steps, lr0).items()}


def schedules_figure(total_steps: int = 100, lr0: float = 0.1):
    """One panel per schedule: learning rate against step."""
    from esc_course.viz import new_figure

    lines = curves(total_steps, lr0)
    fig, axes = new_figure(4, 2, size=(3.2, 2.4))
    for ax, (name, lrs) in zip(axes, lines.items()):
        ax.plot(range(total_steps), lrs)
        ax.set(title=name, xlabel="step", ylabel="learning rate", ylim=(0, lr0 * 1.08))
        ax.grid(alpha=0.3)
    for ax in axes[len(lines):]:
        ax.set_visible(False)
    return fig
