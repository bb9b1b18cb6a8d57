"""One way to pick the device: ``get_device``; and ``describe_device`` for ``esc-course doctor``."""

from __future__ import annotations

import os
import platform

import torch

ENV_VAR = "ESC_DEVICE"


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def available_devices() -> list[str]:
    """Devices this machine can run on, best first: e.g. ['cuda:0', 'cuda:1', 'cpu']."""
    found = []
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(pref: str | torch.device | None = "auto") -> torch.device:
    """Return the device to run on.

    Order: the ESC_DEVICE environment variable (so one setting moves every lab and notebook), then ``pref``;
    ``"auto"`` picks cuda, then mps, then cpu. Asking for a device that is not there raises DeviceError naming
    what is available, rather than silently falling back.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    source = f"{ENV_VAR}={env!r}" if env else f"device={pref!r}"
    choice = env or (str(pref) if pref is not None else "auto")
    if choice.lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    return check_device(choice, source)


def check_device(device: str | torch.device, source: str | None = None) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it; else DeviceError naming ``source`` (by default
    ``device='...'``) and the devices that are available."""
    text = str(device).strip()
    source = source or f"device={text!r}"
    try:
        device = torch.device(text.lower())
    except RuntimeError as err:
        raise DeviceError(
            f"{source} is not a device name; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' "
            f"(available here: {', '.join(available_devices())})"
        ) from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "with" if torch.backends.cuda.is_built() else "without"
            raise DeviceError(
                f"{source} asks for CUDA, but CUDA is not available (torch {torch.__version__} was built {built} "
                f"CUDA support; no usable GPU or driver found). Available: {', '.join(available_devices())}. "
                f"Use device='auto' to pick the best one."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{source}: there are {torch.cuda.device_count()} CUDA devices. "
                f"Available: {', '.join(available_devices())}"
            )
    elif device.type == "mps" and not _mps_available():
        raise DeviceError(f"{source} asks for Apple's MPS, which is not available. "
                          f"Available: {', '.join(available_devices())}")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{source}: device type {device.type!r} is not supported; use cpu, cuda or mps")
    return device


def describe_device(pref: str = "auto") -> str:
    """Plain text a student can paste into a question: versions, device, memory, threads, determinism."""
    from esc_course.provenance import package_version

    def version(dist: str) -> str:
        return package_version(dist) or "not installed"

    lines = [
        f"esc-course      {version('esc-course')}",
        f"python          {platform.python_version()} ({platform.system()} {platform.machine()})",
        f"torch           {torch.__version__}",
        f"torchvision     {version('torchvision')}",
        f"numpy           {version('numpy')}",
        f"CUDA (built)    {torch.version.cuda or 'no'}",
        f"CUDA available  {torch.cuda.is_available()}",
        f"cuDNN           {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'no'}",
        f"MPS available   {_mps_available()}",
        f"threads         {torch.get_num_threads()} (CPU cores: {os.cpu_count()})",
        f"deterministic   {torch.are_deterministic_algorithms_enabled()}",
        f"{ENV_VAR:<15} {os.environ.get(ENV_VAR) or '(not set)'}",
    ]
    try:
        device = get_device(pref)
        lines.append(f"device          {device}")
    except DeviceError as err:
        lines.append(f"device          error: {err}")
        device = None
    if device is not None and device.type == "cuda":
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            lines.append(
                f"  cuda:{i}        {props.name}, {props.total_memory / 2**30:.1f} GiB, "
                f"compute capability {props.major}.{props.minor}, bf16: {torch.cuda.is_bf16_supported()}"
            )
    return "\n".join(lines)
