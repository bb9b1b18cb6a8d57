"""Dropout from scratch against nn.Dropout: drop rate, 1 / (1 - p) scaling, expectation, gradient, eval identity."""

import pytest
import torch
from torch import nn

from esc_course.scratch.dropout import Dropout, dropout, dropout_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drop_rate_and_scaling_match_torch(p):
    x = torch.full((200_000,), 3.0)
    torch.manual_seed(0)
    mine = Dropout(p).train()(x)
    theirs = nn.Dropout(p).train()(x)
    for out in (mine, theirs):
        kept = out[out != 0]
        assert torch.allclose(kept, torch.full_like(kept, 3.0 / (1 - p)))   # survivors scaled by 1 / (1 - p)
        assert (out == 0).float().mean().item() == pytest.approx(p, abs=0.005)
        assert out.mean().item() == pytest.approx(3.0, rel=0.02)           # expectation preserved
    assert (mine == 0).float().mean().item() == pytest.approx((theirs == 0).float().mean().item(), abs=0.007)


def test_expectation_over_many_masks_is_the_input():
    torch.manual_seed(1)
    x = torch.randn(16)
    g = torch.Generator().manual_seed(0)
    mean = torch.stack([dropout(x, 0.5, generator=g) for _ in range(20_000)]).mean(0)
    assert torch.allclose(mean, x, atol=0.05)


def test_eval_mode_and_p_zero_are_identity():
    x = torch.randn(5, 7)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))


def test_gradient_is_the_mask():
    x = torch.randn(1000, requires_grad=True)
    g = torch.Generator().manual_seed(3)
    out = dropout(x, 0.3, generator=g)
    out.sum().backward()
    mask = dropout_mask(x.shape, 0.3, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(x.grad, mask)
    assert torch.allclose(out, x.detach() * mask)


def test_bad_p_names_the_argument():
    with pytest.raises(ValueError, match="p must be in"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="p must be in"):
        dropout(torch.ones(2), -0.1)


def test_shape_and_no_nan_in_a_network():
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), Dropout(0.5), nn.Linear(16, 3))
    out = net(torch.randn(4, 8))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
