"""The written-out losses and output activations against torch.nn.functional: values and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from esc_course import losses as L

g = torch.Generator().manual_seed(0)
LOGITS = torch.randn(16, 5, generator=g, dtype=torch.float64) * 3
LABELS = torch.randint(0, 5, (16,), generator=g)
SOFT = torch.softmax(torch.randn(16, 5, generator=g, dtype=torch.float64), dim=-1)
PRED = torch.randn(16, 3, generator=g, dtype=torch.float64) * 2
TARGET = torch.randn(16, 3, generator=g, dtype=torch.float64)
BINARY = torch.randint(0, 2, (16,), generator=g).double()
Z = torch.randn(16, generator=g, dtype=torch.float64) * 4


def _same_value_and_grad(ours, theirs, *inputs):
    """ours(*inputs) == theirs(*inputs), and so are the gradients with respect to the first input."""
    a = inputs[0].clone().requires_grad_(True)
    b = inputs[0].clone().requires_grad_(True)
    va, vb = ours(a, *inputs[1:]), theirs(b, *inputs[1:])
    torch.testing.assert_close(va, vb, atol=1e-10, rtol=1e-10)
    (ga,) = torch.autograd.grad(va.sum(), a)
    (gb,) = torch.autograd.grad(vb.sum(), b)
    torch.testing.assert_close(ga, gb, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_torch(reduction):
    _same_value_and_grad(lambda p, t: L.mse(p, t, reduction), lambda p, t: F.mse_loss(p, t, reduction=reduction),
                         PRED, TARGET)
    for delta in (0.5, 1.0, 2.0):
        _same_value_and_grad(lambda p, t, d=delta: L.huber(p, t, d, reduction),
                             lambda p, t, d=delta: F.huber_loss(p, t, delta=d, reduction=reduction), PRED, TARGET)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_classification_losses_match_torch(reduction):
    _same_value_and_grad(lambda z, y: L.cross_entropy(z, y, reduction),
                         lambda z, y: F.cross_entropy(z, y, reduction=reduction), LOGITS, LABELS)
    _same_value_and_grad(lambda z, p: L.cross_entropy(z, p, reduction),
                         lambda z, p: F.cross_entropy(z, p, reduction=reduction), LOGITS, SOFT)
    _same_value_and_grad(lambda p, y: L.binary_cross_entropy(p, y, reduction),
                         lambda p, y: F.binary_cross_entropy(p, y, reduction=reduction), torch.sigmoid(Z), BINARY)
    _same_value_and_grad(lambda z, y: L.binary_cross_entropy_with_logits(z, y, reduction),
                         lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction=reduction), Z, BINARY)


def test_kl_divergence_matches_torch_and_its_properties():
    q = torch.softmax(LOGITS, dim=-1)
    _same_value_and_grad(lambda qq, p: L.kl_divergence(p, qq),
                         lambda qq, p: F.kl_div(qq.log(), p, reduction="batchmean"), q, SOFT)
    assert L.kl_divergence(SOFT, SOFT).abs() < 1e-12  # 0 exactly when p = q
    assert L.kl_divergence(SOFT, q) > 0
    assert not torch.isclose(L.kl_divergence(SOFT, q), L.kl_divergence(q, SOFT))  # not symmetric
    one_hot = F.one_hot(LABELS, 5).double()
    assert torch.isfinite(L.kl_divergence(one_hot, q))  # 0 log 0 = 0


def test_activations_match_torch_and_do_not_overflow():
    torch.testing.assert_close(L.softmax(LOGITS), torch.softmax(LOGITS, -1))
    torch.testing.assert_close(L.log_softmax(LOGITS), torch.log_softmax(LOGITS, -1))
    torch.testing.assert_close(L.sigmoid(Z), torch.sigmoid(Z))
    big = torch.tensor([[1000.0, 0.0, -1000.0]])
    assert torch.isfinite(L.softmax(big)).all() and L.softmax(big)[0, 0] == 1.0
    assert torch.isfinite(L.log_softmax(big)).all()
    s = L.sigmoid(torch.tensor([-1000.0, 0.0, 1000.0]))
    assert s.tolist() == [0.0, 0.5, 1.0]
    assert L.softmax(LOGITS).sum(-1).allclose(torch.ones(16, dtype=torch.float64))


def test_cross_entropy_is_kl_plus_label_entropy():
    soft = L.cross_entropy_decomposition(LOGITS, SOFT)
    assert soft["gap"] < 1e-12 and soft["label_entropy"] > 0.5
    assert soft["cross_entropy"] == pytest.approx(soft["kl_divergence"] + soft["label_entropy"], abs=1e-12)
    hard = L.cross_entropy_decomposition(LOGITS, F.one_hot(LABELS, 5).double())
    assert hard["label_entropy"] == 0.0  # one-hot labels: cross-entropy is the KL divergence itself
    assert hard["cross_entropy"] == pytest.approx(hard["kl_divergence"], abs=1e-12)
    assert L.entropy(torch.full((5,), 0.2)) == pytest.approx(math.log(5))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="reduction must be one of mean, sum, none"):
        L.mse(PRED, TARGET, reduction="avg")
    with pytest.raises(ValueError, match="delta"):
        L.huber(PRED, TARGET, delta=0)
    with pytest.raises(ValueError, match=r"class-index targets must have shape \(16,\)"):
        L.cross_entropy(LOGITS, LABELS[:4])
    with pytest.raises(ValueError, match="valid losses: mse, huber"):
        L.get_loss("hinge")
    assert L.get_loss("cross-entropy") is L.cross_entropy
