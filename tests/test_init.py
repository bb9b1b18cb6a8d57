"""init_weights: each scheme's spread matches its formula; names are checked; biases become zero."""

import math

import pytest
import torch
from torch import nn

from esc_course.models import MLP, init_weights
from esc_course.models.init import SCHEMES


def _wide():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(400, 600), nn.ReLU(), nn.Conv2d(8, 16, 3))


@pytest.mark.parametrize("scheme, std_of", [
    ("normal_0.01", lambda fi, fo: 0.01),
    ("normal_1", lambda fi, fo: 1.0),
    ("xavier", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("xavier_uniform", lambda fi, fo: math.sqrt(2 / (fi + fo))),   # U(-a, a) has std a / sqrt(3)
    ("he", lambda fi, fo: math.sqrt(2 / fi)),
    ("he_uniform", lambda fi, fo: math.sqrt(2 / fi)),
    ("lecun", lambda fi, fo: math.sqrt(1 / fi)),
])
def test_scheme_std_matches_formula(scheme, std_of):
    model = init_weights(_wide(), scheme)
    linear, conv = model[0], model[2]
    assert linear.weight.std().item() == pytest.approx(std_of(400, 600), rel=0.02)
    assert conv.weight.std().item() == pytest.approx(std_of(8 * 9, 16 * 9), rel=0.06)
    assert linear.weight.mean().abs().item() < 0.05 * std_of(400, 600)
    assert torch.all(linear.bias == 0) and torch.all(conv.bias == 0)


def test_uniform_variants_are_bounded():
    w = init_weights(_wide(), "he_uniform")[0].weight
    bound = math.sqrt(6 / 400)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.95 * bound


def test_other_layers_are_left_alone():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.PReLU())
    init_weights(model, "normal_1")
    assert torch.all(model[1].weight == 1) and torch.all(model[2].weight == 0.25)


def test_pytorch_scheme_resets_to_default_range():
    model = init_weights(MLP(100, hidden=(50,), out_features=3), "normal_1")
    init_weights(model, "pytorch")
    assert model[0].weight.abs().max().item() <= 1 / math.sqrt(100)


def test_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        init_weights(nn.Linear(2, 2), "glorot_magic")
    for name in [*SCHEMES, "pytorch"]:
        assert name in str(err.value)
