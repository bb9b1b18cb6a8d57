"""The plain training loop: ``train_epoch``, ``evaluate`` and ``fit``.

Nothing is hidden: one epoch is a for-loop over batches with forward, loss, backward, (clip), step. Losses and
metrics stay on the device during the epoch and are read back once at its end (no ``.item()`` per step).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from esc_course.metrics import Metric, resolve_metrics

Batch = tuple[torch.Tensor, torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped."""

    def __init__(self, epoch: int, step: int, value: float):
        self.epoch, self.step, self.value = epoch, step, value
        super().__init__(
            f"loss became {value} at epoch {epoch}, step {step}; training stopped. Usual causes: a learning "
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


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _batch_size(y: Any) -> int:
    return y.shape[0] if isinstance(y, torch.Tensor) else len(y)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _summarize(losses: list[torch.Tensor], sizes: list[int], values: dict[str, list[torch.Tensor]],
               epoch: int | None) -> dict[str, float]:
    """Per-step device tensors -> sample-weighted means, with one host sync."""
    if not losses:
        raise ValueError("the data yielded no batches: is the data set empty?")
    device = losses[0].device
    w = torch.tensor(sizes, dtype=torch.float32, device=device)
    loss = torch.stack(losses).float()
    rows = [loss] + [torch.stack(v).float() for v in values.values()]
    table = torch.stack(rows)  # (1 + metrics, steps)
    means = (table * w).sum(dim=1) / w.sum()
    finite = torch.isfinite(loss)
    host = torch.cat([means, finite.float()]).tolist()  # the one sync of the epoch
    n = len(rows)
    if epoch is not None and not all(host[n:]):
        step = host[n:].index(0.0)
        raise NonFiniteLossError(epoch, step + 1, float(loss[step]))
    return dict(zip(["loss", *values], host[:n]))


def train_epoch(model: nn.Module, data: Iterable[Batch], *, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                device: torch.device | str | None = None, clip_grad_norm: float | None = None,
                metrics: Sequence[str | Metric] = ("accuracy",), scheduler=None, epoch: int = 1) -> dict[str, float]:
    """One pass over ``data`` with updates; returns the epoch's mean loss and metrics on the training batches.

    ``scheduler``, if given, is stepped after every batch (per-step schedules such as warmup or one-cycle).
    """
    device = torch.device(device) if device is not None else _model_device(model)
    fns = resolve_metrics(metrics)
    model.train()
    losses, sizes, values = [], [], {name: [] for name in fns}
    for x, y in data:
        x, y = _to_device(x, device), _to_device(y, device)
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.detach())
        sizes.append(_batch_size(y))
        with torch.no_grad():
            for name, fn in fns.items():
                values[name].append(fn(out.detach(), y))
    return _summarize(losses, sizes, values, epoch)


@torch.no_grad()
def evaluate(model: nn.Module, data: Iterable[Batch], loss_fn: Callable | None = None,
             device: torch.device | str | None = None,
             metrics: Sequence[str | Metric] = ("accuracy",)) -> dict[str, float]:
    """Mean loss (if ``loss_fn``) and metrics over ``data`` in eval mode; the model's mode is restored."""
    device = torch.device(device) if device is not None else _model_device(model)
    fns = resolve_metrics(metrics)
    was_training = model.training
    model.eval()
    try:
        losses, sizes, values = [], [], {name: [] for name in fns}
        for x, y in data:
            x, y = _to_device(x, device), _to_device(y, device)
            out = model(x)
            losses.append(loss_fn(out, y) if loss_fn is not None else torch.zeros((), device=device))
            sizes.append(_batch_size(y))
            for name, fn in fns.items():
                values[name].append(fn(out, y))
        result = _summarize(losses, sizes, values, epoch=None)
    finally:
        model.train(was_training)
    if loss_fn is None:
        result.pop("loss")
    return result


def _progress(epochs: int, enabled: bool, desc: str):
    """A tqdm bar over epochs: shown in a terminal or a notebook, quiet otherwise (logs, CI)."""
    if enabled:
        in_notebook = "ipykernel" in sys.modules
        enabled = in_notebook or sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, desc=desc, unit="epoch", leave=False)


def fit(model: nn.Module, train: Iterable[Batch], val: Iterable[Batch] | None = None, *, loss_fn: Callable,
        optimizer: torch.optim.Optimizer, epochs: int, device: torch.device | str | None = None, scheduler=None,
        scheduler_interval: str = "epoch", clip_grad_norm: float | None = None,
        metrics: Sequence[str | Metric] = ("accuracy",), progress: bool = True,
        on_epoch: Callable[[int, History], bool | None] | None = None, desc: str = "fit") -> History:
    """Train ``model`` for ``epochs`` passes over ``train``; evaluate on ``val`` after each; return the History.

    Args:
        train, val: any iterables of ``(x, y)`` batches (TensorLoader, DataLoader, a list).
        scheduler: a torch LR scheduler, stepped once per epoch (``scheduler_interval="epoch"``) or after every
            batch (``"step"``). ReduceLROnPlateau gets the validation loss (else the training loss).
        clip_grad_norm: clip the global gradient norm to this value before each step.
        on_epoch: called as ``on_epoch(epoch, history)`` after each epoch; return True to stop early.
    Raises:
        NonFiniteLossError: the loss became NaN/inf (names the epoch and the step).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    history = History()
    bar = _progress(epochs, progress, desc)
    per_step = scheduler if scheduler_interval == "step" else None
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            stats = train_epoch(model, train, loss_fn=loss_fn, optimizer=optimizer, device=device,
                                clip_grad_norm=clip_grad_norm, metrics=metrics, scheduler=per_step, epoch=epoch)
            row = {"epoch": epoch, **{f"train_{k}": v for k, v in stats.items()}}
            if val is not None:
                row.update({f"val_{k}": v for k, v in evaluate(model, val, loss_fn, device, metrics).items()})
            if scheduler is not None and per_step is None:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(row.get("val_loss", row["train_loss"]))
                else:
                    scheduler.step()
            row.update(lr=lr, seconds=time.perf_counter() - start)
            history.append(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith(("loss", "accuracy"))})
            if on_epoch is not None and on_epoch(epoch, history):
                break
    finally:
        if bar is not None:
            bar.close()
    return history
