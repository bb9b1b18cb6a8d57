"""Data-parallel training under ``torchrun`` with PyTorch's own engine (DistributedDataParallel).

    torchrun --nproc_per_node=2 train.py          # one process per GPU (nccl), or per CPU worker (gloo)

``fit`` does the rest when it runs in such a process: it joins the process group (``setup``), wraps the model in
DDP (gradients are averaged across processes in the backward pass), gives each process its shard of every global
batch of a TensorLoader (``shard``; a DataLoader should use a ``DistributedSampler``, whose ``set_epoch`` fit
calls), reduces the epoch's sums across processes once per epoch, and writes checkpoints and shows progress on
rank 0 only. Outside torchrun all of this is skipped; what fit still calls there (``launched``, ``active``,
``is_main``, ``set_epoch``) only reads the environment and the loader.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def launched() -> bool:
    """Whether torchrun (or another launcher that sets RANK/WORLD_SIZE) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


_AVAILABLE = dist.is_available()  # built with torch.distributed (fixed for the process)


def active() -> bool:
    """A process group with more than one process is running (checked once per epoch: kept cheap)."""
    return _AVAILABLE and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that logs and writes files. Under torchrun this holds before the
    process group is joined too (the rank is then read from torchrun's RANK variable)."""
    if active():
        return dist.get_rank() == 0
    return not launched() or int(os.environ["RANK"]) == 0


def setup(backend: str | None = None) -> torch.device:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU) and return this process's device.

    Call it first thing in a script for multi-GPU runs, so that ``get_device("cuda")`` already means this
    process's GPU when the data are put on it; ``fit`` calls it itself otherwise. Outside torchrun it does nothing.
    """
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if not launched() or active():
        return device
    if cuda:
        torch.cuda.set_device(device)  # "cuda" without an index now means this process's GPU
    backend = backend or ("nccl" if cuda else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' (CUDA) or 'gloo' (CPU), got {backend!r}")
    dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    return device


def cleanup() -> None:
    """Leave the process group (at the end of a script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` (already on ``device``); rank 0's weights are broadcast."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over all processes (``t`` itself when not distributed). nccl reduces on this process's
    GPU, so ``t`` is moved there first; gloo takes it where it is."""
    if not active():
        return t
    if dist.get_backend() == "nccl":
        t = t.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class ShardedLoader:
    """This process's part of every global batch of a TensorLoader.

    Every process draws the same batch order (the same seed), and each global batch of B samples is cut into
    ``world_size`` nearly equal parts, one per rank. With DDP's gradient averaging the update equals one process
    training on the whole batch (up to rounding, and exactly when B divides evenly). A final batch with fewer
    samples than processes is dropped, so every process takes the same number of steps (DDP needs that).
    """

    def __init__(self, loader: Any, rank: int, world_size: int, drop_small: bool = True):
        self.loader, self.rank, self.world_size, self.drop_small = loader, rank, world_size, drop_small

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            if self.drop_small and len(y) < self.world_size:
                continue
            xs, ys = torch.tensor_split(x, self.world_size), torch.tensor_split(y, self.world_size)
            if len(ys[self.rank]):
                yield xs[self.rank], ys[self.rank]

    def __len__(self) -> int:
        """Steps per epoch: the loader's batches, less a final one with fewer samples than processes where this
        process gets none of it (always with ``drop_small``; ranks >= its size without)."""
        last = self.loader.num_samples % self.loader.batch_size
        small = bool(last) and not self.loader.drop_last and last < self.world_size
        return len(self.loader) - (small and (self.drop_small or self.rank >= last))

    def __repr__(self) -> str:
        return f"ShardedLoader(rank {self.rank} of {self.world_size}, {self.loader!r})"


def shard(data: Any, train: bool = True) -> Any:
    """Per-rank view of ``data`` when distributed: TensorLoaders are sharded; a DataLoader with a
    DistributedSampler (or anything else) is returned as it is."""
    from esc_course.data.loader import TensorLoader

    if not active() or not isinstance(data, TensorLoader):
        return data
    return ShardedLoader(data, rank(), world_size(), drop_small=train)


def set_epoch(data: Any, epoch: int) -> None:
    """Tell a DistributedSampler which epoch it is (its shuffle order depends on it)."""
    sampler = getattr(data, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
