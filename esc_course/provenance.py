"""Where a result came from: versions, platform, device, git commit and seed (stored in every results.json)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any


def git_commit(path: Path | str | None = None) -> str | None:
    """The commit of the checkout that holds ``path`` (this package by default), or None outside git."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def package_version(dist: str) -> str | None:
    """The installed version of the distribution ``dist`` (e.g. "torchvision"), or None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(device: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Versions, device, git commit and seed: the provenance stored with every result."""
    import torch

    env = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "torch": torch.__version__,
        "torchvision": package_version("torchvision"),
        "numpy": package_version("numpy"),
        "esc_course": package_version("esc-course"),
        "device": str(device) if device is not None else None,
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "seed": seed,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        env["device_name"] = torch.cuda.get_device_name(torch.device(device))
        env["cuda"] = torch.version.cuda
    return env
