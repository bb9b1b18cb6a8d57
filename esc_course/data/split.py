"""Train/validation/test splits by ratios (the slides use 6:2:2 and 5:3:2), stratified and seeded."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def split_indices(y: torch.Tensor, ratios: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
                  stratify: bool = True) -> list[torch.Tensor]:
    """Indices of each part, in the order of ``ratios`` (which are normalised to sum to 1).

    Stratified (for class labels): every class is split by the same ratios, so each part keeps the class
    balance. The same ``y``, ratios and seed always give the same split.
    """
    ratios = [float(r) for r in ratios]
    if len(ratios) < 2 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be two or more non-negative numbers with a positive sum, got {ratios}")
    total = sum(ratios)
    ratios = [r / total for r in ratios]
    n = y.shape[0]
    if n == 0:
        raise ValueError("cannot split an empty data set")
    g = torch.Generator().manual_seed(seed)
    groups = [torch.nonzero(y.cpu() == c).flatten() for c in torch.unique(y.cpu())] if stratify else \
        [torch.arange(n)]
    parts: list[list[torch.Tensor]] = [[] for _ in ratios]
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=g)]
        bounds = _bounds(len(idx), ratios)
        for k in range(len(ratios)):
            parts[k].append(idx[bounds[k]:bounds[k + 1]])
    out = []
    for p in parts:
        merged = torch.cat(p)
        out.append(merged[torch.randperm(len(merged), generator=g)])  # no class blocks inside a part
    return out


def _bounds(n: int, ratios: Sequence[float]) -> list[int]:
    """Cut points so part sizes follow the ratios and add up to n (largest remainders get the extras)."""
    exact = [r * n for r in ratios]
    sizes = [int(e) for e in exact]
    for i in sorted(range(len(ratios)), key=lambda i: exact[i] - sizes[i], reverse=True)[: n - sum(sizes)]:
        sizes[i] += 1
    bounds = [0]
    for s in sizes:
        bounds.append(bounds[-1] + s)
    return bounds


def split(x: torch.Tensor, y: torch.Tensor, ratios: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
          stratify: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(x_train, y_train), (x_val, y_val), (x_test, y_test)]`` (one pair per ratio)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    return [(x[i], y[i]) for i in split_indices(y, ratios, seed, stratify)]


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of images (N, C, H, W) or features (N, D): compute on the training split only."""
    dims = [0] + list(range(2, x.ndim))
    return x.float().mean(dim=dims), x.float().std(dim=dims).clamp_min(1e-8)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / std.reshape(shape)
