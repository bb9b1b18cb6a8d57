"""Normalization layers from scratch: BatchNorm1d/2d, LayerNorm, GroupNorm, checked against torch.nn in the tests.

They differ only in which axes the mean and variance are taken over (x has shape (N, C, *)):

- BatchNorm: over the batch and spatial axes, one mean per channel (Ioffe & Szegedy 2015). Training uses the
  batch's statistics and updates running estimates; eval uses the running estimates.
- LayerNorm: over the trailing ``normalized_shape`` axes of each sample (Ba et al. 2016); no batch dependence.
- GroupNorm: over groups of channels and the spatial axes of each sample (Wu & He 2018).

Parameters and buffers carry torch.nn's names (weight, bias, running_mean, running_var, num_batches_tracked), so a
state_dict loads into the torch layer and back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def normalize(x: torch.Tensor, dims: Sequence[int], eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x - mean) / sqrt(var + eps) over ``dims``; var is the biased (1/m) variance, as in the BN paper.

    Returns (x_hat, mean, var) with mean/var keeping the reduced dims (for broadcasting).
    """
    mean = x.mean(dim=tuple(dims), keepdim=True)
    var = (x - mean).pow(2).mean(dim=tuple(dims), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps), mean, var


class _BatchNorm(nn.Module):
    """Shared logic of BatchNorm1d and BatchNorm2d; subclasses say which input ranks are valid."""

    ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))   # gamma
            self.bias = nn.Parameter(torch.zeros(num_features))    # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            shapes = " or ".join(f"(N, {self.num_features}{', ...' * (r - 2) if r > 2 else ''})" for r in self.ranks)
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input of shape {shapes}, "
                             f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        dims = [0, *range(2, x.ndim)]              # every axis but the channel axis
        shape = (1, -1) + (1,) * (x.ndim - 2)      # per-channel values broadcast over (N, C, *)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            m = x.numel() // self.num_features     # values per channel in this batch
            if m < 2:
                raise ValueError(f"expected more than 1 value per channel when training, got input {tuple(x.shape)}")
            x_hat, mean, var = normalize(x, dims, self.eps)
            if self.training and self.track_running_stats:
                self._update_running(mean.reshape(-1), var.reshape(-1) * m / (m - 1))
        else:
            x_hat = (x - self.running_mean.reshape(shape)) / torch.sqrt(self.running_var.reshape(shape) + self.eps)
        if self.affine:
            x_hat = x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)
        return x_hat

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """Exponential moving average with the *unbiased* variance (torch's choice), or a cumulative average."""
        self.num_batches_tracked += 1
        rate = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - rate).add_(rate * mean)
        self.running_var.mul_(1 - rate).add_(rate * unbiased_var)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) features or (N, C, L) sequences, like ``torch.nn.BatchNorm1d``."""

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) images, one mean and variance per channel, like ``torch.nn.BatchNorm2d``."""

    ranks = (4,)


class LayerNorm(nn.Module):
    """Normalize each sample over its trailing ``normalized_shape`` axes, like ``torch.nn.LayerNorm``."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"normalized_shape must be positive sizes, got {normalized_shape!r}")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(shape))
            self.bias = nn.Parameter(torch.zeros(shape))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"LayerNorm({list(self.normalized_shape)}) expects input of shape (..., "
                             f"{', '.join(map(str, self.normalized_shape))}), got {tuple(x.shape)}")
        x_hat, _, _ = normalize(x, range(x.ndim - k, x.ndim), self.eps)
        return x_hat * self.weight + self.bias if self.elementwise_affine else x_hat

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(nn.Module):
    """Split C channels into ``num_groups`` groups; normalize each sample's group over its channels and space.

    One group is LayerNorm over (C, H, W); C groups is InstanceNorm. Like ``torch.nn.GroupNorm``.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm expects input of shape (N, {self.num_channels}, *), got {tuple(x.shape)}")
        n = x.shape[0]
        grouped = x.reshape(n, self.num_groups, -1)            # (N, G, C/G * spatial)
        x_hat, _, _ = normalize(grouped, [2], self.eps)
        x_hat = x_hat.reshape(x.shape)
        if self.affine:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            x_hat = x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)
        return x_hat

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
