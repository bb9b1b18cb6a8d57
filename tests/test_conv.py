"""Convolution and max pooling by hand, against torch.nn.functional and the slides' worked example."""

import pytest
import torch
import torch.nn.functional as F

from esc_course.scratch.conv import (
    SLIDE_RESULT,
    conv2d,
    conv2d_im2col,
    max_pool2d,
    output_size,
    slide_example,
)


def test_the_slides_example():
    ex = slide_example()
    assert ex["feature"].tolist() == [list(map(float, r)) for r in SLIDE_RESULT] == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    image, kernel = ex["image"], ex["filter"]
    assert torch.equal(F.conv2d(image[None, None], kernel[None, None])[0, 0], ex["feature"])
    assert ex["pooled"].tolist() == [[4.0, 4.0], [4.0, 4.0]]  # 2x2 max pooling, stride 1


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)])
@pytest.mark.parametrize("fn", [conv2d, conv2d_im2col])
def test_multi_channel_many_filters_against_torch(fn, stride, padding):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 8, generator=g, dtype=torch.float64)  # 3 input channels
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)  # 4 filters
    b = torch.randn(4, generator=g, dtype=torch.float64)
    ours = fn(x, w, b, stride=stride, padding=padding)
    torch.testing.assert_close(ours, F.conv2d(x, w, b, stride=stride, padding=padding))
    assert ours.shape[2:] == (output_size(9, 3, stride, padding), output_size(8, 3, stride, padding))


def test_gradients_flow_like_torch():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    (conv2d(x, w, padding=1) ** 2).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    (F.conv2d(x, w, padding=1) ** 2).sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)


@pytest.mark.parametrize("kernel, stride", [(2, None), (2, 1), (3, 2), (3, 1)])
def test_max_pool_against_torch(kernel, stride):
    x = torch.randn(2, 3, 7, 7)
    torch.testing.assert_close(max_pool2d(x, kernel, stride), F.max_pool2d(x, kernel, stride))


@pytest.mark.parametrize("n, k, s, p, expected", [(5, 3, 1, 0, 3), (32, 5, 1, 0, 28), (28, 5, 1, 2, 28),
                                                  (7, 3, 2, 1, 4), (224, 11, 4, 2, 55), (8, 2, 2, 0, 4)])
def test_output_size_formula(n, k, s, p, expected):
    assert output_size(n, k, s, p) == expected  # (224 + 4 - 11) // 4 + 1 = 55: AlexNet's first layer
    assert F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p).shape[-1] == expected


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="channels"):
        conv2d(torch.randn(1, 3, 5, 5), torch.randn(2, 1, 3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        output_size(2, 5)
    with pytest.raises(ValueError, match="stride"):
        output_size(5, 3, stride=0)
