"""Every model gets a shape and a NaN test (timm's rule); activations by name."""

import pytest
import torch

from esc_course.models import ACTIVATIONS, MLP, Maxout, count_parameters, get_activation
from esc_course.models.activations import activation_curves


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.2)])
def test_mlp_shapes_and_finite(activation, batch_norm, dropout):
    model = MLP(10, hidden=(16, 8), out_features=3, activation=activation, batch_norm=batch_norm, dropout=dropout)
    out = model(torch.randn(5, 10))
    assert out.shape == (5, 3)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_perceptron_is_one_linear_layer():
    model = MLP(2, hidden=(), out_features=1)
    assert count_parameters(model) == 3
    assert model(torch.randn(4, 2)).shape == (4, 1)


def test_mlp_flattens_images_and_names_the_expected_shape():
    model = MLP(28 * 28, hidden=(32,), out_features=10)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        model(torch.randn(2, 100))


def test_maxout_takes_the_max_of_pieces():
    x = torch.tensor([[1.0, -2.0, 3.0, 5.0]])
    assert Maxout(2)(x).tolist() == [[1.0, 5.0]]
    with pytest.raises(ValueError, match="multiple of 2"):
        Maxout(2)(torch.randn(1, 3))


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_activation("swishy")
    assert "relu" in str(err.value) and "maxout" in str(err.value)


def test_activation_derivatives_match_closed_forms():
    curves = activation_curves(["sigmoid", "tanh", "relu", "leaky_relu", "elu"])
    x, y, dy = curves["sigmoid"]
    assert torch.allclose(dy, y * (1 - y), atol=1e-6)
    x, y, dy = curves["tanh"]
    assert torch.allclose(dy, 1 - y**2, atol=1e-6)
    x, _, dy = curves["relu"]
    assert torch.equal(dy[x > 0], torch.ones_like(dy[x > 0])) and torch.all(dy[x < 0] == 0)
    x, _, dy = curves["leaky_relu"]
    assert torch.allclose(dy[x < 0], torch.full_like(dy[x < 0], 0.01))
    x, y, dy = curves["elu"]
    assert torch.allclose(dy[x < 0], y[x < 0] + 1, atol=1e-6)
