"""The generated shapes: format, balance, reproducibility, and that colour alone does not give the class."""

import pytest
import torch
import torch.nn.functional as F

from esc_course.data.shapes import SHAPE_CLASSES, shapes


def test_format_range_and_balance():
    x, y = shapes(600, size=16, seed=0)
    assert x.shape == (600, 3, 16, 16) and x.dtype == torch.float32
    assert y.shape == (600,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.bincount(y, minlength=len(SHAPE_CLASSES)).tolist() == [100] * len(SHAPE_CLASSES)
    assert len(set(y[:30].tolist())) > 3  # shuffled, not in class blocks


@pytest.mark.parametrize("size", [8, 28, 32])
def test_other_sizes(size):
    x, y = shapes(13, size=size, seed=3)
    assert x.shape == (13, 3, size, size) and torch.isfinite(x).all()
    assert torch.bincount(y).tolist() == [3, 2, 2, 2, 2, 2]  # the remainder goes to the first classes


def test_same_seed_same_images_other_seed_other_images():
    a, ya = shapes(50, seed=7)
    b, yb = shapes(50, seed=7)
    c, _ = shapes(50, seed=8)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.allclose(a, c)


def test_noise_free_shapes_have_the_expected_areas():
    # with noise=0 and two flat colours, the share of foreground pixels tells the shape's area / bounding box
    x, y = shapes(600, size=32, seed=1, noise=0.0)
    grey = x.mean(1).flatten(1)
    lo, hi = grey.min(1, keepdim=True).values, grey.max(1, keepdim=True).values
    corner = grey[:, :1]  # a corner pixel is always background: the shape stays inside and corners are outside
    fg = ((grey - corner).abs() > 0.5 * (hi - lo)).float().mean(1)
    area = {name: fg[y == k].mean().item() for k, name in enumerate(SHAPE_CLASSES)}
    assert area["ring"] < area["circle"] and area["frame"] < area["square"] and area["triangle"] < area["circle"]


def test_colour_alone_does_not_give_the_class():
    # a multinomial logistic regression on each image's mean colour and its colour spread stays near chance (1/6),
    # while the images themselves are easy for a CNN (test_cnn_models / the lab)
    x, y = shapes(1500, seed=0)
    feats = torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)
    feats = (feats - feats.mean(0)) / feats.std(0)
    w = torch.zeros(feats.shape[1], len(SHAPE_CLASSES), requires_grad=True)
    b = torch.zeros(len(SHAPE_CLASSES), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(feats @ w + b, y).backward()
        opt.step()
    acc = ((feats @ w + b).argmax(1) == y).float().mean().item()
    assert acc < 0.4, acc


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="n must be"):
        shapes(0)
    with pytest.raises(ValueError, match="size must be"):
        shapes(10, size=4)
    with pytest.raises(ValueError, match="noise"):
        shapes(10, noise=-1)
