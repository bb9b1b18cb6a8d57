"""Seed every random number generator a run touches, first thing."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool | None = None) -> int:
    """Seed python, numpy and torch (CPU and every CUDA device); return the seed.

    ``deterministic=True`` also does what PyTorch's reproducibility notes ask for
    (https://pytorch.org/docs/stable/notes/randomness.html): deterministic algorithms only (an operation
    without one raises), cuDNN's deterministic kernels and no benchmark autotuning, and a fixed cuBLAS workspace.
    ``False`` turns that mode off again; ``None`` (the default) leaves it as it is, so a lab that seeds itself keeps
    the mode its user chose before running it.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this process's hash seed is fixed at start
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif deterministic is not None:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    return seed
