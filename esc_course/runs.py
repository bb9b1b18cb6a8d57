"""What a lab returns (LabResult) and how it is written: ``results.json`` plus one PNG per figure.

results.json = {"lab", "config", "metrics", "history", "tables", "env", "seconds"}: the numbers and where they
came from (versions, device, git commit, seed), so a result can be checked and compared later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LabResult:
    """A lab's values. Printing and drawing happen elsewhere (CLI, notebooks, the HTML index)."""

    lab: str
    config: dict[str, Any]
    metrics: dict[str, float]
    history: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # run name -> History.to_dict()
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # table name -> rows
    figures: dict[str, Any] = field(default_factory=dict)  # name -> matplotlib Figure
    captions: dict[str, str] = field(default_factory=dict)  # figure or table name -> one sentence on what it shows
    seconds: float = 0.0
    device: str = "cpu"
    env: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "config": self.config,
            "metrics": self.metrics,
            "history": self.history,
            "tables": self.tables,
            "captions": self.captions,
            "env": self.env or environment(self.device, self.config.get("seed")),
            "seconds": self.seconds,
        }


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


def jsonable(value: Any) -> Any:
    """Convert tensors, numpy values, paths and dataclasses to JSON types; NaN/inf become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # torch / numpy
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def file_mode() -> int:
    """The mode a plain open() would give a new file (0o666 less the umask); mkstemp's own is 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, flush, fsync, rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(result: LabResult, out: Path | str) -> Path:
    """Write ``out/results.json`` and ``out/<figure>.png``; return the results.json path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in result.figures.items():
        fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    data = jsonable(result.to_json())
    data["figures"] = [f"{name}.png" for name in result.figures]
    path = out / "results.json"
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False))
    return path


def finish(result: LabResult, out: Path | str | None, started: float) -> LabResult:
    """End of every lab's ``run``: stamp time and provenance, and write the files when ``out`` is given (under
    torchrun by rank 0 only: the other processes computed the same result and would race it for the same files)."""
    from esc_course import distributed

    result.seconds = time.perf_counter() - started
    result.env = environment(result.device, result.config.get("seed"))
    if out is not None and distributed.is_main():
        write_results(result, out)
    return result


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
