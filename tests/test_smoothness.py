"""Santurkar et al.'s landscape measurements on a closed form, and noisy BatchNorm (the measuring training loop
is week 4's, tested in test_week04_training.py)."""

import pytest
import torch
from torch import nn

from esc_course.smoothness import BatchNormNoise, landscape_step


class Quadratic(nn.Module):
    """L(theta) = c/2 ||theta||^2 through loss_fn below: the gradient is c theta and beta is exactly c."""

    def __init__(self, theta):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta))

    def forward(self, x):
        return self.theta


def test_measurements_match_the_closed_form_of_a_quadratic():
    c = 3.0
    model = Quadratic([1.0, -2.0])
    loss_fn = lambda out, y: 0.5 * c * out.pow(2).sum()  # noqa: E731
    steps = [0.1, 0.2]
    m = landscape_step(model, loss_fn, torch.zeros(1), torch.zeros(1), steps)
    theta2 = 5.0
    losses = [0.5 * c * (1 - eta * c) ** 2 * theta2 for eta in [0.0, *steps]]  # theta - eta c theta
    assert m["loss"] == pytest.approx(0.5 * c * theta2)
    assert m["loss_min"] == pytest.approx(min(losses)) and m["loss_max"] == pytest.approx(max(losses))
    # grad change = || c theta - c (1 - eta c) theta || = eta c^2 ||theta||
    assert m["grad_change_max"] == pytest.approx(0.2 * c**2 * theta2**0.5, rel=1e-5)
    assert m["grad_change_min"] == pytest.approx(0.1 * c**2 * theta2**0.5, rel=1e-5)
    assert m["beta"] == pytest.approx(c, rel=1e-5)


def test_measurement_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).train()
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    m = landscape_step(model, nn.functional.cross_entropy, x, y, [0.1, 0.5])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # BN running stats too
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert m["loss_range"] >= 0 and m["beta"] > 0
    with pytest.raises(ValueError, match="step_sizes"):
        landscape_step(model, nn.functional.cross_entropy, x, y, [])


def test_noisy_batch_norm_shifts_and_rescales_in_training_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6))
    x = torch.randn(32, 3, 8, 8)
    clean = model.train()(x)
    with BatchNormNoise(model, mean=1.0, scale=0.5, std=0.1) as noise:
        noisy1, noisy2 = model(x), model(x)
        assert len(noise.handles) == 1
        assert noisy1.mean(dim=(0, 2, 3)).abs().max() > 0.1          # non-zero channel means
        assert (noisy1.std(dim=(0, 2, 3)) - 1).abs().max() > 0.05     # non-unit channel variances
        assert not torch.allclose(noisy1, noisy2)                       # a new draw every step
        model.eval()
        assert torch.equal(model(x), model(x))                          # evaluation is clean
        model.train()
    assert torch.allclose(model(x), clean, atol=1e-5)                  # hooks removed on leaving the block
    with pytest.raises(ValueError, match="no BatchNorm"):
        BatchNormNoise(nn.Linear(2, 2))
