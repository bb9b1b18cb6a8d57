"""Timing helpers shared by the benchmark sections, and the environment a result was measured in."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def interleaved(fns: dict[str, Callable[[], list[float]]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Call every function once per round, swapping the order each round so that a machine getting busier or
    quieter affects all alike. Each call returns the durations it measured (seconds); warm-up rounds are dropped."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(warmup + rounds):
        for name in names if r % 2 == 0 else reversed(names):
            durations = fns[name]()
            if r >= warmup:
                times[name].extend(durations)
    return times


def timed(fn: Callable[[], object]) -> list[float]:
    start = time.perf_counter()
    fn()
    return [time.perf_counter() - start]


def median(values: list[float]) -> float:
    return statistics.median(values)


def median_interval(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """A distribution-free ~95 % confidence interval for the median: the order statistics n/2 -+ z*sqrt(n)/2
    (the binomial count of values below the median, in its normal approximation)."""
    v = sorted(values)
    n = len(v)
    half = z * math.sqrt(n) / 2
    lo, hi = max(math.floor(n / 2 - half), 0), min(math.ceil(n / 2 + half), n - 1)
    return v[lo], v[hi]


def spread(values: list[float]) -> float:
    """Median absolute deviation relative to the median: how noisy a measurement was."""
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values) / m if m else 0.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device) -> dict:
    import numpy
    import torch

    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "git_commit": git_commit(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:
        env["torchvision"] = None
    return env


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
