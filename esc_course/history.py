"""What one epoch and a whole run of ``fit`` produce: ``EpochStats`` (one epoch's per-step values, kept on the
device and read back once) and ``History`` (one row per epoch). ``esc_course.train`` re-exports both."""

from __future__ import annotations

import math
import operator
from typing import Any

import torch

from esc_course import distributed
from esc_course.metrics import Metric


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped. ``detail`` says what was found in the data, if anything."""

    def __init__(self, epoch: int, step: int, value: float, detail: str = ""):
        self.epoch, self.step, self.value, self.detail = epoch, step, value, detail
        found = f" Found: {detail}." if detail else ""
        super().__init__(
            f"loss became {value} at epoch {epoch}, step {step}; training stopped.{found} Usual causes: a learning "
            f"rate that is too large (try 10x smaller), inputs with NaN/inf, or log/div of zero in a custom loss."
        )


class History:
    """Per-epoch records: ``history["train_loss"]`` is a list with one value per epoch.

    Rows hold ``epoch``, ``train_<metric>``, ``val_<metric>``, ``lr`` and ``seconds``.
    """

    def __init__(self, rows: list[dict[str, float]] | None = None):
        self.rows: list[dict[str, float]] = list(rows or [])

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list[float]:
        if not any(key in r for r in self.rows):
            keys = sorted({k for r in self.rows for k in r})
            raise KeyError(f"{key!r} is not in this history; it has: {', '.join(keys) or '(no epochs yet)'}")
        return [r.get(key, math.nan) for r in self.rows]

    def __contains__(self, key: str) -> bool:
        return any(key in r for r in self.rows)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.update(dict.fromkeys(r))
        return list(seen)

    @property
    def last(self) -> dict[str, float]:
        return dict(self.rows[-1]) if self.rows else {}

    def best(self, key: str, mode: str = "min") -> dict[str, float]:
        """The row where ``key`` is lowest (mode='min') or highest (mode='max')."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        values = self[key]
        pick = min if mode == "min" else max
        return dict(self.rows[values.index(pick(values))])

    def to_dict(self) -> dict[str, list[float]]:
        """Column form, JSON-ready: {"epoch": [1, 2, ...], "train_loss": [...], ...}."""
        return {k: self[k] for k in self.keys()}

    @classmethod
    def from_dict(cls, columns: dict[str, list[float]]) -> History:
        n = max((len(v) for v in columns.values()), default=0)
        return cls([{k: v[i] for k, v in columns.items() if i < len(v)} for i in range(n)])

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, last={self.last})"


class EpochStats:
    """One epoch's per-step losses, batch sizes and metric values, kept on the device until ``summarize``."""

    def __init__(self, metrics: dict[str, Metric]):
        self.fns = metrics
        # a metric's batch-sum form where it has one (accuracy: the count of correct predictions): summed as is,
        # where batch means are weighted by the batch size at the end of the epoch
        self.step_fns = {name: getattr(fn, "batch_sum", fn) for name, fn in metrics.items()}
        self.summed = [hasattr(fn, "batch_sum") for fn in metrics.values()]
        # metrics that build no autograd graph (accuracy's counts: argmax, compare) take the output as it is
        self.detach = not all(getattr(fn, "graph_free", False) for fn in self.step_fns.values())
        self.losses: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.values: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
        self.names = ["loss", *metrics]

    def fresh(self) -> EpochStats:
        """New, empty statistics for the same metrics (cheaper than ``EpochStats(metrics)``: fit's next epoch)."""
        new = object.__new__(EpochStats)
        new.fns, new.step_fns, new.summed, new.names = self.fns, self.step_fns, self.summed, self.names
        new.detach = self.detach
        new.losses, new.sizes, new.values = [], [], {name: [] for name in self.fns}
        return new

    def __len__(self) -> int:
        return len(self.losses)

    def add(self, loss: torch.Tensor, out: Any, y: Any) -> None:
        self.losses.append(loss.detach())
        self.sizes.append(y.shape[0] if isinstance(y, torch.Tensor) else len(y))
        if self.fns:
            if self.detach:
                out = out.detach()  # metrics of a detached output build no graph: no no_grad context needed
            for name, fn in self.step_fns.items():
                self.values[name].append(fn(out, y))

    def summarize(self, epoch: int | None = None, prefix: str = "") -> dict[str, float]:
        """Sample-weighted means named ``prefix + name``, with one host sync (and one all-reduce across processes
        under torchrun). With ``epoch``, a NaN/inf loss raises NonFiniteLossError."""
        losses, sizes, n = self.losses, self.sizes, len(self.losses)
        parts = [*losses]
        for v in self.values.values():
            parts += v
        if n and losses[0].dtype not in (torch.float32, torch.float64):  # bf16/fp16 would round the counts
            parts = [p.float() for p in parts]
        flat = torch.stack(parts).tolist() if n else []  # every per-step number in one go: the epoch's one sync
        weighted = sum(map(operator.mul, flat[:n], sizes))  # a NaN/inf loss makes it NaN/inf (sizes > 0)
        bad = 0 if math.isfinite(weighted) else 1
        sums = [weighted]
        for i, summed in enumerate(self.summed, 1):
            row = flat[i * n:(i + 1) * n]
            sums.append(sum(row) if summed else sum(map(operator.mul, row, sizes)))
        total = float(sum(sizes))
        if distributed.active():  # this process's sums + everyone else's
            reduced = distributed.all_reduce_sum(torch.tensor([*sums, total, bad], dtype=torch.float64)).tolist()
            sums, total, bad = reduced[:-2], reduced[-2], reduced[-1]
        if total == 0:
            raise ValueError("the data yielded no batches: is the data set empty?")
        if epoch is not None and bad > 0:
            finite = [math.isfinite(v) for v in flat[:n]]
            if all(finite):
                raise NonFiniteLossError(epoch, 0, math.nan, "the loss was non-finite in another process")
            step = finite.index(False)
            raise NonFiniteLossError(epoch, step + 1, flat[step])
        return {prefix + name: s / total for name, s in zip(self.names, sums)}

    def state_dict(self) -> dict[str, Any]:
        stack = (lambda v: torch.stack(v)) if self.losses else (lambda v: torch.zeros(0))
        return {"losses": stack(self.losses), "sizes": list(self.sizes),
                "values": {k: stack(v) for k, v in self.values.items()}}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.losses = list(state["losses"].to(device).unbind())
        self.sizes = list(state["sizes"])
        self.values = {k: list(state["values"][k].to(device).unbind()) for k in self.fns}
