"""The fast paths ``fit`` takes on CUDA, each opt-out: bf16 autocast, channels_last, cuDNN autotuning, fused
optimizer steps, torch.compile. On the CPU everything stays fp32 and exactly reproducible.

- bf16 autocast: matmuls and convolutions in bfloat16 on tensor cores, the rest in fp32; bf16 has fp32's range, so
  no loss scaling is needed (unlike fp16; Micikevicius et al. 2018, "Mixed Precision Training").
- channels_last (NHWC): the memory layout tensor-core convolutions use, so cuDNN skips the transposes.
- cudnn.benchmark: time the convolution algorithms once per input shape and keep the fastest.
- fused optimizers: one kernel updates every parameter (torch's ``fused=True`` for SGD/Adam/AdamW/...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

AMP_MODES = ("auto", "bf16", "off")


def amp_dtype(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp``: "auto" is bf16 on CUDA devices that support it and off elsewhere;
    "bf16" asks for it on any device (CPU autocast works, but is slower than fp32 on most CPUs); "off" never."""
    if amp is True:
        amp = "auto"
    elif amp is False or amp is None:
        amp = "off"
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(map(repr, AMP_MODES))} (or True/False), got {amp!r}")
    if amp == "off":
        return None
    if amp == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else None
    return torch.bfloat16


_NO_CAST = contextlib.nullcontext()  # reusable, and shared: nothing to set up per epoch


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A reusable context manager: autocast to ``dtype`` on ``device``, or nothing."""
    if dtype is None:
        return _NO_CAST
    return torch.autocast(device_type=device.type, dtype=dtype)


def has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def use_channels_last(option: str | bool, model: nn.Module, device: torch.device) -> bool:
    """Whether to train in channels_last: "auto" means on CUDA for models with Conv2d layers."""
    if option not in ("auto", True, False):
        raise ValueError(f"channels_last must be 'auto', True or False, got {option!r}")
    if option == "auto":
        return device.type == "cuda" and has_conv2d(model)
    return bool(option)


def prefer_fused(optimizer: torch.optim.Optimizer, device: torch.device) -> bool:
    """Switch a torch optimizer to its fused kernel on CUDA, where the user left ``fused`` unset.

    Only before its first step (the state is created by the first step, on the device the fused kernel wants) and
    only for the built-in optimizers that have ``fused`` in their param groups. Returns whether it did.
    """
    if device.type != "cuda" or optimizer.state or type(optimizer).__module__.split(".")[:2] != ["torch", "optim"]:
        return False
    groups = optimizer.param_groups
    if not all("fused" in g and g["fused"] is None and not g.get("foreach") and not g.get("differentiable")
               for g in groups):
        return False
    params = [p for g in groups for p in g["params"]]
    if not all(p.device.type == "cuda" and p.is_floating_point() for p in params):
        return False
    for g in groups:
        g["fused"] = True
    return True


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """cudnn.benchmark on CUDA while training (not in deterministic mode); the old setting is put back after."""
    before = torch.backends.cudnn.benchmark
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
