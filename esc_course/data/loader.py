"""TensorLoader: a whole small data set held as tensors on the device, batched by randperm and slicing.

A DataLoader costs about 0.58 ms per batch in Python overhead; slicing a tensor that is already on the device
costs microseconds (pytorch/pytorch#106704). For data sets that fit in memory this is the fast path.
"""

from __future__ import annotations

import math

import torch

from esc_course.seed import derived_generator


class TensorLoader:
    """Iterate over ``(x[idx], y[idx])`` batches of tensors kept on ``device``.

    Args:
        x, y: tensors with the same first dimension (N samples).
        batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: a new random order every epoch, drawn from ``self.generator``.
        device: where the tensors live; moved there once, here.
        generator: a ``torch.Generator`` (CPU) for a reproducible order independent of other random draws. Without
            one, a shuffling loader created after ``seed_everything(seed)`` gets its own generator derived from that
            seed (``esc_course.seed.derived_generator``: the same order in two runs that seed alike, however many
            other random numbers they drew); before any ``seed_everything`` it uses torch's global generator.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = True,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None,
                 drop_last: bool = False):
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must have the same number of samples, got x: {tuple(x.shape)}, "
                             f"y: {tuple(y.shape)}")
        if x.shape[0] == 0:
            raise ValueError("the data set is empty (x has 0 samples)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_last and batch_size > x.shape[0]:
            raise ValueError(f"batch_size={batch_size} is larger than the data set ({x.shape[0]} samples) "
                             f"and drop_last=True would give no batch; use batch_size <= {x.shape[0]}")
        device = torch.device(device) if device is not None else x.device
        self.x = x.to(device)
        self.y = y.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if generator is None and shuffle:
            generator = derived_generator()
        self.generator = generator
        self.drop_last = drop_last
        self.device = device

    @property
    def num_samples(self) -> int:
        return self.x.shape[0]

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = self.num_samples
        if self.shuffle:
            # the permutation is drawn on the CPU so the order does not depend on the device
            order = torch.randperm(n, generator=self.generator).to(self.device, non_blocking=True)
        else:
            order = None
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            if order is None:
                yield self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]
            else:
                idx = order[start:start + self.batch_size]
                # index_select: same result as x[idx], without advanced indexing's overhead on small batches
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)

    def __repr__(self) -> str:
        return (f"TensorLoader(samples={self.num_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, device={self.device})")
