"""Schedules as pure functions, checked against torch's schedulers and closed forms."""

import math

import pytest
import torch
from torch.optim import lr_scheduler

from esc_course.optim import SGD
from esc_course.optim import schedules as S

LR0, T = 0.1, 60


def _torch_lrs(make, steps=T, lr=LR0):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("name,params,make", [
    ("step", dict(step_size=7, gamma=0.5), lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    ("exponential", dict(k=0.05), lambda o: lr_scheduler.ExponentialLR(o, gamma=math.exp(-0.05))),
    ("warmup", dict(warmup_steps=10, start_factor=0.1),
     lambda o: lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=10)),
    ("cosine", dict(total_steps=T, lr_min=0.001), lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.001)),
    ("triangular", dict(lr_max=0.5, half_cycle=8),
     lambda o: lr_scheduler.CyclicLR(o, base_lr=LR0, max_lr=0.5, step_size_up=8, mode="triangular")),
    ("one_cycle", dict(total_steps=T, pct_start=0.25),
     lambda o: lr_scheduler.OneCycleLR(o, max_lr=LR0, total_steps=T, pct_start=0.25, cycle_momentum=False)),
])
def test_matches_torch_scheduler(name, params, make):
    ours = [S.get_schedule(name)(s, lr0=LR0, **params) for s in range(T)]
    theirs = _torch_lrs(make)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)
    via_lambda = _torch_lrs(lambda o: S.lambda_lr(o, name, **params))
    assert via_lambda == pytest.approx(theirs, rel=1e-6, abs=1e-9)


def test_inverse_time_closed_form_and_shapes():
    assert S.inverse_time(0, 0.2, k=0.5) == 0.2
    assert S.inverse_time(4, 0.2, k=0.5) == pytest.approx(0.2 / 3)
    assert S.exponential(10, 1.0, k=0.1) == pytest.approx(math.exp(-1))
    assert S.step_decay(9, 1.0, step_size=3, gamma=0.5) == 0.125
    assert S.linear_warmup(0, 1.0, warmup_steps=4) == 0.0 and S.linear_warmup(100, 1.0, warmup_steps=4) == 1.0
    assert S.cosine(T, 1.0, total_steps=T) == pytest.approx(0.0, abs=1e-12)
    lrs = [S.triangular(s, 0.1, lr_max=1.0, half_cycle=5) for s in range(21)]
    assert lrs[0] == lrs[10] == lrs[20] == pytest.approx(0.1) and lrs[5] == lrs[15] == pytest.approx(1.0)
    peak = [S.one_cycle(s, 1.0, total_steps=100) for s in range(100)]
    assert max(peak) == pytest.approx(1.0) and peak[0] == pytest.approx(1 / 25) and peak[-1] < 1e-5


def test_lambda_lr_keeps_group_ratios_and_drives_an_optimizer():
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = SGD([{"params": [a], "lr": 0.2}, {"params": [b], "lr": 0.02}], lr=0.2)
    sched = S.lambda_lr(opt, "step", step_size=2, gamma=0.1)
    seen = []
    for _ in range(5):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx([0.2, 0.02]) and seen[2] == pytest.approx([0.02, 0.002])
    assert seen[4] == pytest.approx([0.002, 0.0002])


def test_curves_and_figure():
    lines = S.curves(total_steps=50, lr0=0.1)
    assert set(lines) == set(S.SCHEDULES)
    for name, lrs in lines.items():
        assert len(lrs) == 50 and all(0 <= v <= 0.1 + 1e-12 for v in lrs), name
    assert lines["warmup"][0] == 0.0 and lines["cosine"][0] == pytest.approx(0.1)
    fig = S.schedules_figure(total_steps=40)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(S.SCHEDULES)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="valid schedules: step, exponential"):
        S.get_schedule("warm_restarts")
    with pytest.raises(ValueError, match="step must be"):
        S.cosine(-1, 0.1, total_steps=10)
    with pytest.raises(ValueError, match="step_size"):
        S.step_decay(3, 0.1, step_size=0)
    with pytest.raises(ValueError, match="pct_start"):
        S.one_cycle(0, 0.1, total_steps=100, pct_start=1.5)
    with pytest.raises(ValueError, match="half_cycle"):
        S.lambda_lr(SGD([torch.zeros(1, requires_grad=True)], lr=0.1), "triangular", lr_max=1.0, half_cycle=0)
