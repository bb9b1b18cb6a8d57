"""What a lab returns (LabResult) and how it is written: ``results.json`` plus one PNG per figure.

results.json = {"lab", "config", "metrics", "history", "tables", "env", "seconds"}: the numbers and where they
came from (versions, device, git commit, seed: esc_course.provenance), so a result can be checked and compared
later. Every file is written through esc_course.files (atomic, the usual mode).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esc_course.files import atomic_write, write_text
from esc_course.provenance import environment


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


def write_results(result: LabResult, out: Path | str) -> Path:
    """Write ``out/results.json`` and ``out/<figure>.png``; return the results.json path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in result.figures.items():
        with atomic_write(out / f"{name}.png") as tmp:  # a report never shows half a PNG
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    data = jsonable(result.to_json())
    data["figures"] = [f"{name}.png" for name in result.figures]
    path = out / "results.json"
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False))
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
