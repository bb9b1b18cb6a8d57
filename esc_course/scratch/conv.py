"""Convolution and max pooling by hand, checked against ``torch.nn.functional`` in the tests.

What deep learning calls convolution is cross-correlation: the filter slides over the image without being
flipped, and each output is the sum of the window times the filter (plus a bias). With C input channels the
filter has C slices and the sums run over all of them; F filters give F output channels:

    out[n, f, i, j] = b[f] + sum_{c, u, v} x_pad[n, c, i * stride + u, j * stride + v] * w[f, c, u, v]

Output size per side (the formula every CNN's shapes follow):  floor((n + 2 * padding - kernel) / stride) + 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The slides' example: a 5x5 binary image and a 3x3 filter give a 3x3 "convolved feature".
SLIDE_IMAGE = ((1, 1, 1, 0, 0), (0, 1, 1, 1, 0), (0, 0, 1, 1, 1), (0, 0, 1, 1, 0), (0, 1, 1, 0, 0))
SLIDE_FILTER = ((1, 0, 1), (0, 1, 0), (1, 0, 1))
SLIDE_RESULT = ((4, 3, 4), (2, 4, 3), (2, 3, 4))


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Pixels per side after a conv or pooling layer: floor((n + 2p - d(k - 1) - 1) / s) + 1
    (with dilation d = 1 this is floor((n + 2p - k) / s) + 1)."""
    if kernel < 1 or stride < 1 or padding < 0 or dilation < 1:
        raise ValueError(f"need kernel >= 1, stride >= 1, padding >= 0, dilation >= 1; got kernel={kernel}, "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    size = (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if size < 1:
        raise ValueError(f"a {kernel}x{kernel} window does not fit in {n} pixels with padding {padding}")
    return size


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    """(H, W) -> (1, 1, H, W); (C, H, W) -> (1, C, H, W); (N, C, H, W) as is."""
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must be (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    return x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))


def conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, stride: int = 1,
           padding: int = 0) -> torch.Tensor:
    """x (N, C, H, W), w (F, C, k, k) [or (k, k) for one channel and one filter], b (F,) -> (N, F, H', W').

    One output position at a time: take the window, multiply by every filter, sum over channels and window.
    Same result as ``F.conv2d(x, w, b, stride, padding)``.
    """
    x = _as_batch(x)
    w = _as_batch(w)
    n, c, h, wd = x.shape
    f, cw, kh, kw = w.shape
    if cw != c:
        raise ValueError(f"the filters have {cw} channels but the input has {c}: w must be (F, {c}, k, k)")
    ho, wo = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    x = F.pad(x, (padding, padding, padding, padding))  # zeros around the border
    out = x.new_zeros(n, f, ho, wo)
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]  # (N, C, kh, kw)
            out[:, :, i, j] = (window[:, None] * w[None]).sum(dim=(2, 3, 4))  # (N, F)
    if b is not None:
        out = out + b.reshape(1, f, 1, 1)
    return out


def conv2d_im2col(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, stride: int = 1,
                  padding: int = 0) -> torch.Tensor:
    """The same convolution as one matrix product, the way libraries do it ("im2col"): unfold every window into
    a column (N, C*k*k, H'*W'), then (F, C*k*k) @ columns. This is why a conv layer's cost is a matmul's cost."""
    x, w = _as_batch(x), _as_batch(w)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, C*kh*kw, H'*W')
    out = (w.reshape(f, -1) @ cols).reshape(n, f, ho, wo)
    return out if b is None else out + b.reshape(1, f, 1, 1)


def max_pool2d(x: torch.Tensor, kernel_size: int = 2, stride: int | None = None) -> torch.Tensor:
    """The largest value in each ``kernel_size`` window, channel by channel (stride defaults to the kernel size).
    Same result as ``F.max_pool2d(x, kernel_size, stride)``."""
    x = _as_batch(x)
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    ho, wo = output_size(h, kernel_size, stride), output_size(w, kernel_size, stride)
    out = x.new_empty(n, c, ho, wo)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size].amax((2, 3))
    return out


def slide_example() -> dict[str, torch.Tensor]:
    """The slides' 5x5 image, 3x3 filter and the convolved feature, computed by ``conv2d``, then 2x2 max pooling
    with stride 1 (as on the slides)."""
    image = torch.tensor(SLIDE_IMAGE, dtype=torch.float32)
    kernel = torch.tensor(SLIDE_FILTER, dtype=torch.float32)
    feature = conv2d(image, kernel)[0, 0]
    return {"image": image, "filter": kernel, "feature": feature,
            "pooled": max_pool2d(feature, kernel_size=2, stride=1)[0, 0]}
