"""Seed every random number generator a run touches, first thing.

``seed_everything(seed)`` is the one call that makes an experiment repeatable: it seeds python, numpy and torch, and
it arms the data loaders. Every ``TensorLoader`` created afterwards without its own ``generator=`` gets a private
``torch.Generator`` whose seed comes from ``seed`` and from how many loaders were created since that call (the first
one after seeding gets stream 0, the next stream 1, ...). So in a notebook::

    seed_everything(0); train = TensorLoader(x, y); model = build(); fit(model, train, ...)   # run A
    seed_everything(0); train = TensorLoader(x, y); model = build_other(); fit(...)          # run B

both runs see the same batches in the same order, however many random numbers ``build`` and ``build_other`` drew
(the shuffle order does not come from torch's global generator). Create the loader after ``seed_everything``: a loader
made before it keeps the generator it had. The private generator is ``loader.generator``, which is what checkpoints
save and resume restores (``checkpoint.generators_of``).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_armed: dict[str, int] = {}  # {"seed": the last seed_everything seed, "count": generators handed out since}


def seed_everything(seed: int, deterministic: bool | None = None) -> int:
    """Seed python, numpy and torch (CPU and every CUDA device) and the data loaders created afterwards; return
    the seed.

    Loaders: see the module docstring; each ``TensorLoader`` created after this call without ``generator=`` draws its
    shuffle order from ``derived_generator()``, independent of other random draws.

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
    _armed.update(seed=seed, count=0)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif deterministic is not None:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    return seed


def derived_generator() -> torch.Generator | None:
    """A new CPU ``torch.Generator`` for the next data loader: stream k (k = generators handed out since the last
    ``seed_everything(seed)``) of ``seed``, or None when ``seed_everything`` was never called (the loader then draws
    from torch's global generator, as ``torch.utils.data.DataLoader`` does).

    The seed of stream k is numpy's ``SeedSequence(seed, spawn_key=(k,))``: well-separated streams, a pure function
    of (seed, k), so it does not depend on and does not consume any other random state.
    """
    if not _armed:
        return None
    k = _armed["count"]
    _armed["count"] = k + 1
    state = np.random.SeedSequence(_armed["seed"], spawn_key=(k,)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))
