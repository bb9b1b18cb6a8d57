"""From-scratch normalization layers against torch.nn: training mode, eval mode, running statistics, gradients."""

import pytest
import torch
from torch import nn

from esc_course.scratch.norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, normalize


def _pair(mine: nn.Module, theirs: nn.Module):
    """Give both layers the same random affine parameters (so gamma/beta are really tested)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p))
    mine.load_state_dict(theirs.state_dict())
    return mine, theirs


def _same_forward_backward(mine, theirs, x, atol=1e-5):
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = mine(xa), theirs(xb)
    assert torch.allclose(ya, yb, atol=atol)
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=atol)
    for (name, pa), pb in zip(mine.named_parameters(), theirs.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=atol), name


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("cls, ref, shape", [
    (BatchNorm1d, nn.BatchNorm1d, (16, 6)),
    (BatchNorm1d, nn.BatchNorm1d, (8, 6, 5)),
    (BatchNorm2d, nn.BatchNorm2d, (8, 6, 4, 3)),
])
def test_batch_norm_matches_torch_in_train_and_eval(cls, ref, shape, momentum):
    mine, theirs = _pair(cls(6, momentum=momentum), ref(6, momentum=momentum))
    for step in range(4):                          # several steps: running statistics accumulate
        x = torch.randn(shape) * (step + 1) + step
        _same_forward_backward(mine.train(), theirs.train(), x)
    assert torch.allclose(mine.running_mean, theirs.running_mean, atol=1e-5)
    assert torch.allclose(mine.running_var, theirs.running_var, atol=1e-5)   # unbiased variance in the average
    assert mine.num_batches_tracked == theirs.num_batches_tracked == 4
    x = torch.randn(shape) * 3 + 1
    _same_forward_backward(mine.eval(), theirs.eval(), x)
    assert not torch.allclose(mine.eval()(x), mine.train()(x), atol=1e-3)   # eval really uses running stats


def test_batch_norm_without_running_stats_or_affine():
    mine, theirs = BatchNorm2d(3, affine=False, track_running_stats=False), nn.BatchNorm2d(
        3, affine=False, track_running_stats=False)
    x = torch.randn(4, 3, 5, 5) * 2 + 3
    for mode in (True, False):
        assert torch.allclose(mine.train(mode)(x), theirs.train(mode)(x), atol=1e-5)
    assert mine.running_mean is None and list(mine.parameters()) == []


def test_batch_norm_output_is_standardized_per_channel():
    y = BatchNorm2d(4).train()(torch.randn(32, 4, 6, 6) * 5 + 7)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)


def test_state_dict_loads_into_torch_and_back():
    mine = BatchNorm1d(5)
    mine(torch.randn(10, 5) + 2)
    theirs = nn.BatchNorm1d(5)
    theirs.load_state_dict(mine.state_dict())
    assert torch.equal(theirs.running_mean, mine.running_mean)
    BatchNorm1d(5).load_state_dict(theirs.state_dict())


@pytest.mark.parametrize("normalized_shape, shape", [(8, (4, 8)), ((5, 8), (3, 5, 8)), ((3, 4, 4), (2, 3, 4, 4))])
def test_layer_norm_matches_torch(normalized_shape, shape):
    mine, theirs = _pair(LayerNorm(normalized_shape), nn.LayerNorm(normalized_shape))
    x = torch.randn(shape) * 4 - 1
    for mode in (True, False):                      # no running statistics: both modes are the same
        _same_forward_backward(mine.train(mode), theirs.train(mode), x)


def test_layer_norm_does_not_mix_samples():
    ln = LayerNorm(6, elementwise_affine=False)
    x = torch.randn(4, 6)
    assert torch.allclose(ln(x)[:1], ln(x[:1]), atol=1e-6)   # unlike batch norm, one sample alone is the same


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_matches_torch(groups):
    mine, theirs = _pair(GroupNorm(groups, 6), nn.GroupNorm(groups, 6))
    x = torch.randn(3, 6, 4, 5) * 2 + 0.5
    for mode in (True, False):
        _same_forward_backward(mine.train(mode), theirs.train(mode), x)
    if groups < 6:                                  # (N, C) input: one value per group would be degenerate
        _same_forward_backward(mine, theirs, torch.randn(3, 6))


def test_normalize_slides_2x2_example_per_feature():
    x = torch.tensor([[2.0, 6.0], [15.0, 1.0]])     # a batch of 2 samples with 2 features
    x_hat, mean, var = normalize(x, [0], eps=0.0)
    assert mean.flatten().tolist() == [8.5, 3.5]
    assert var.flatten().tolist() == [42.25, 6.25]   # biased (1/m) variance
    assert torch.allclose(x_hat, torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))


def test_bad_shapes_name_what_is_expected():
    with pytest.raises(ValueError, match=r"\(N, 4, \.\.\., \.\.\.\)"):
        BatchNorm2d(4)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(4).train()(torch.randn(1, 4))
    with pytest.raises(ValueError, match="divisible"):
        GroupNorm(4, 6)
    with pytest.raises(ValueError, match="LayerNorm"):
        LayerNorm(5)(torch.randn(2, 4))
