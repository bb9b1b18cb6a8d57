"""Small generated data sets for the first labs (XOR, blobs, regression lines)."""

from __future__ import annotations

import torch


def xor(samples_per_corner: int = 1, noise: float = 0.0, seed: int | None = None):
    """The XOR problem: inputs at the corners of the unit square, label 1 where exactly one input is 1.

    With ``samples_per_corner > 1`` and ``noise > 0``, each corner becomes a Gaussian cloud of that std.
    Returns ``x`` (N, 2) float32 and ``y`` (N,) int64.
    """
    if samples_per_corner < 1:
        raise ValueError(f"samples_per_corner must be >= 1, got {samples_per_corner}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    corners = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 0])
    x = corners.repeat_interleave(samples_per_corner, dim=0)
    y = labels.repeat_interleave(samples_per_corner)
    if noise > 0:
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        x = x + noise * torch.randn(x.shape, generator=g)
    return x, y


def blobs(n: int = 200, centers: int = 2, std: float = 0.5, dim: int = 2, seed: int | None = None):
    """``n`` points around ``centers`` random centres in [-3, 3]^dim; labels are the centre index."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    mu = torch.rand(centers, dim, generator=g) * 6 - 3
    y = torch.arange(n) % centers
    x = mu[y] + std * torch.randn(n, dim, generator=g)
    return x, y
