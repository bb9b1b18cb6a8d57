"""The plain training loop: ``train_epoch``, ``evaluate`` and ``fit``.

Nothing is hidden: one step is forward, loss, backward, (clip), optimizer step, in ``train_steps``. Losses and
metrics stay on the device during the epoch and are read back once at its end (no ``.item()`` per step).

``fit`` adds, each visible in its body: a checkpoint after every epoch (``checkpoint_dir``; ``resume=True``
continues exactly where a killed run stopped), bf16 autocast / channels_last / fused optimizers / cuDNN autotuning
on CUDA (``esc_course.speed``), DistributedDataParallel under torchrun (``esc_course.distributed``), and clear
errors for bad input (``esc_course.diagnose``: which layer got which shape, labels out of range, NaN inputs).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn

from esc_course import checkpoint, diagnose, distributed, speed
from esc_course.metrics import Metric, resolve_metrics

Batch = tuple[torch.Tensor, torch.Tensor]


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


class EpochStats:
    """One epoch's per-step losses, batch sizes and metric values, kept on the device until ``summarize``."""

    def __init__(self, metrics: dict[str, Metric]):
        self.fns = metrics
        # a metric's batch-sum form where it has one (accuracy: the count of correct predictions): summed as is,
        # where batch means are weighted by the batch size at the end of the epoch
        self.step_fns = {name: getattr(fn, "batch_sum", fn) for name, fn in metrics.items()}
        self.summed = [hasattr(fn, "batch_sum") for fn in metrics.values()]
        self.losses: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.values: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}

    def __len__(self) -> int:
        return len(self.losses)

    def add(self, loss: torch.Tensor, out: Any, y: Any) -> None:
        self.losses.append(loss.detach())
        self.sizes.append(_batch_size(y))
        if self.fns:
            out = out.detach()  # metrics of a detached output build no graph: no no_grad context needed
            for name, fn in self.step_fns.items():
                self.values[name].append(fn(out, y))

    def summarize(self, epoch: int | None = None) -> dict[str, float]:
        """Sample-weighted means, with one host sync (and one all-reduce across processes under torchrun)."""
        names = ["loss", *self.values]
        if self.losses:  # (1 + metrics, steps) numbers, read in one go: the one sync of the epoch
            rows = torch.stack([torch.stack(self.losses).float()]
                               + [torch.stack(v).float() for v in self.values.values()]).tolist()
        else:
            rows = [[] for _ in names]
        sums = [math.fsum(row) if summed else math.fsum(v * n for v, n in zip(row, self.sizes))
                for row, summed in zip(rows, [False, *self.summed])]
        total, bad = float(sum(self.sizes)), sum(not math.isfinite(v) for v in rows[0])
        if distributed.active():  # this process's sums + everyone else's
            reduced = distributed.all_reduce_sum(torch.tensor([*sums, total, bad], dtype=torch.float64)).tolist()
            sums, total, bad = reduced[:-2], reduced[-2], reduced[-1]
        if total == 0:
            raise ValueError("the data yielded no batches: is the data set empty?")
        if epoch is not None and bad > 0:
            finite = [math.isfinite(v) for v in rows[0]]
            if all(finite):
                raise NonFiniteLossError(epoch, 0, math.nan, "the loss was non-finite in another process")
            step = finite.index(False)
            raise NonFiniteLossError(epoch, step + 1, rows[0][step])
        return {name: s / total for name, s in zip(names, sums)}

    def state_dict(self) -> dict[str, Any]:
        stack = (lambda v: torch.stack(v)) if self.losses else (lambda v: torch.zeros(0))
        return {"losses": stack(self.losses), "sizes": list(self.sizes),
                "values": {k: stack(v) for k, v in self.values.items()},
                "summed": [k for k, summed in zip(self.fns, self.summed) if summed]}  # which values are sums

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.losses = list(state["losses"].to(device).unbind())
        self.sizes = list(state["sizes"])
        # step checkpoints written before accuracy was counted per step hold batch means and have no "summed"
        saved_sums = set(state.get("summed", ()))
        sizes = torch.tensor(self.sizes, dtype=torch.float32)
        self.values = {}
        for k, summed in zip(self.fns, self.summed):
            v = state["values"][k]
            if summed and k not in saved_sums and v.numel():  # saved as batch means: make them batch sums
                v = v.float() * sizes
            self.values[k] = list(v.to(device).unbind())


def _forward(model: nn.Module, x: Any) -> Any:
    try:
        return model(x)
    except diagnose.SHAPE_ERRORS as err:
        if isinstance(err, torch.OutOfMemoryError):
            raise
        raise diagnose.forward_error(model, x, err) from err


def _loss(loss_fn: Callable, out: Any, y: Any, where: str = "train") -> torch.Tensor:
    try:
        return loss_fn(out, y)
    except diagnose.SHAPE_ERRORS as err:
        raise diagnose.loss_error(loss_fn, out, y, err, where) from err


def train_steps(model: nn.Module, batches: Iterable[Batch], stats: EpochStats, *, loss_fn: Callable,
                optimizer: torch.optim.Optimizer, device: torch.device, clip_grad_norm: float | None = None,
                scheduler=None, cast=None, channels_last: bool = False, check: tuple | None = None) -> int:
    """Forward, loss, backward, (clip), step for each batch; per-step values go to ``stats``. Returns the step count.

    ``cast``: an autocast context (``speed.autocast``); ``check``: ``(all_targets, where)`` to check the first
    batch (finite inputs, labels in range) before its step.
    """
    cast = cast if cast is not None else nullcontext()
    steps = 0
    for x, y in batches:
        x, y = _to_device(x, device), _to_device(y, device)
        if channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with cast:
            out = _forward(model, x)
            if check is not None:
                diagnose.check_batch(x, y, out, *check)
                check = None
            loss = _loss(loss_fn, out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        stats.add(loss, out, y)
        steps += 1
    return steps


def train_epoch(model: nn.Module, data: Iterable[Batch], *, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                device: torch.device | str | None = None, clip_grad_norm: float | None = None,
                metrics: Sequence[str | Metric] = ("accuracy",), scheduler=None, epoch: int = 1,
                amp: str | bool = "auto") -> dict[str, float]:
    """One pass over ``data`` with updates; returns the epoch's mean loss and metrics on the training batches.

    ``scheduler``, if given, is stepped after every batch (per-step schedules such as warmup or one-cycle).
    ``amp``: "auto" (bf16 autocast on CUDA that supports it), "bf16" or "off".
    """
    device = torch.device(device) if device is not None else _model_device(model)
    stats = EpochStats(resolve_metrics(metrics))
    model.train()
    train_steps(model, data, stats, loss_fn=loss_fn, optimizer=optimizer, device=device,
                clip_grad_norm=clip_grad_norm, scheduler=scheduler,
                cast=speed.autocast(device, speed.amp_dtype(amp, device)))
    return stats.summarize(epoch)


@torch.no_grad()
def evaluate(model: nn.Module, data: Iterable[Batch], loss_fn: Callable | None = None,
             device: torch.device | str | None = None, metrics: Sequence[str | Metric] = ("accuracy",),
             amp: str | bool = "auto") -> dict[str, float]:
    """Mean loss (if ``loss_fn``) and metrics over ``data`` in eval mode; the model's mode is restored."""
    device = torch.device(device) if device is not None else _model_device(model)
    stats = EpochStats(resolve_metrics(metrics))
    cast = speed.autocast(device, speed.amp_dtype(amp, device))
    was_training = model.training
    model.eval()
    try:
        first = True
        for x, y in data:
            x, y = _to_device(x, device), _to_device(y, device)
            with cast:
                out = _forward(model, x)
                if first:
                    diagnose.check_batch(x, y, out, where="evaluation")
                    first = False
                loss = _loss(loss_fn, out, y, "evaluation") if loss_fn is not None else torch.zeros((), device=device)
            stats.add(loss, out, y)
        result = stats.summarize(epoch=None)
    finally:
        model.train(was_training)
    if loss_fn is None:
        result.pop("loss")
    return result


def _progress(epochs: int, enabled: bool, desc: str, initial: int = 0):
    """A tqdm bar over epochs: shown in a terminal or a notebook, quiet otherwise (logs, CI, ranks > 0)."""
    if enabled:
        in_notebook = "ipykernel" in sys.modules
        enabled = (in_notebook or sys.stderr.isatty()) and distributed.is_main()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, initial=initial, desc=desc, unit="epoch", leave=False)


def resolve_device(device: torch.device | str | None, model: nn.Module) -> torch.device:
    """``device`` checked (CUDA asked for where there is none raises DeviceError naming what is available);
    None means where the model's parameters are, "auto" the best device here (``get_device``)."""
    from esc_course.device import check_device, get_device

    if device is None:
        return _model_device(model)
    if isinstance(device, str) and device.strip().lower() == "auto":
        return get_device("auto")
    return check_device(device)


def _check_arguments(model, train, loss_fn, optimizer, epochs, scheduler, scheduler_interval, checkpoint_every):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if train is None or not hasattr(train, "__iter__"):
        raise TypeError(f"train must be an iterable of (x, y) batches (a TensorLoader, a DataLoader, a list), "
                        f"got {type(train).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(output, target), got {loss_fn!r}")
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be None or a positive number of steps, got {checkpoint_every!r}")
    lrs = [float(g["lr"]) for g in optimizer.param_groups]
    for i, lr in enumerate(lrs):
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"learning rate must be a positive number, got lr={lr!r} (optimizer param group {i})")
    if scheduler is None and all(lr == 0 for lr in lrs):
        raise ValueError("learning rate must be a positive number, got lr=0.0 and no scheduler to raise it: "
                         "training would not change the weights")


def _checkpoints(checkpoint_dir, resume: bool, every: int | None) -> checkpoint.FitCheckpoints | None:
    min_seconds = 0.0
    if checkpoint_dir is None:
        auto = checkpoint.next_run_checkpoint()  # inside `esc-course lab run`: every fit checkpoints
        if auto is None:
            if resume:
                raise ValueError("resume=True needs checkpoint_dir: the folder the interrupted fit wrote to")
            return None
        checkpoint_dir, resume, min_seconds = auto
    return checkpoint.FitCheckpoints(Path(checkpoint_dir), resume, every, min_seconds)


def _replay(partial: dict, rng_at_save: dict, train, generators, stats: EpochStats) -> Iterator[Batch]:
    """Resume inside an epoch: the batch order of that epoch again, past the batches already trained on."""
    checkpoint.set_rng_state(partial["epoch_rng"], generators)  # the random state as the epoch began
    batches = iter(train)
    for _ in range(len(stats)):
        if next(batches, None) is None:
            raise ValueError("the training data yield fewer batches than when the checkpoint was written")
    checkpoint.set_rng_state(rng_at_save, generators)  # and as it was when the checkpoint was written
    return batches


def _train_summary(stats: EpochStats, epoch: int, train) -> dict[str, float]:
    try:
        return stats.summarize(epoch)
    except NonFiniteLossError as err:
        detail = diagnose.find_nonfinite(train)  # only now, on the error path: which samples are NaN/inf
        if detail:
            raise NonFiniteLossError(err.epoch, err.step, err.value, detail) from None
        raise


def fit(model: nn.Module, train: Iterable[Batch], val: Iterable[Batch] | None = None, *, loss_fn: Callable,
        optimizer: torch.optim.Optimizer, epochs: int, device: torch.device | str | None = None, scheduler=None,
        scheduler_interval: str = "epoch", clip_grad_norm: float | None = None,
        metrics: Sequence[str | Metric] = ("accuracy",), progress: bool = True,
        on_epoch: Callable[[int, History], bool | None] | None = None, desc: str = "fit",
        checkpoint_dir: str | Path | None = None, resume: bool = False, checkpoint_every: int | None = None,
        amp: str | bool = "auto", channels_last: str | bool = "auto", compile: bool = False) -> History:
    """Train ``model`` for ``epochs`` passes over ``train``; evaluate on ``val`` after each; return the History.

    Args:
        train, val: any iterables of ``(x, y)`` batches (TensorLoader, DataLoader, a list).
        scheduler: a torch LR scheduler, stepped once per epoch (``scheduler_interval="epoch"``) or after every
            batch (``"step"``). ReduceLROnPlateau gets the validation loss (else the training loss).
        clip_grad_norm: clip the global gradient norm to this value before each step.
        on_epoch: called as ``on_epoch(epoch, history)`` after each epoch; return True to stop early. A hook
            with ``state_dict()`` and ``load_state_dict()`` is checkpointed and resumed with the run.
        checkpoint_dir: write ``checkpoint_dir/last.safetensors`` after every epoch (and every
            ``checkpoint_every`` steps): model, optimizer, scheduler, history, counters, random and loader states.
        resume: continue from the checkpoint in ``checkpoint_dir`` if there is one; ``epochs`` is the total.
            On the CPU the resumed run ends exactly where the uninterrupted one would have.
        amp: "auto" (bf16 autocast on CUDA devices that support it, fp32 elsewhere), "bf16" or "off".
        channels_last: "auto" (for models with Conv2d, on CUDA), True or False.
        compile: train through ``torch.compile(model)``.
    Raises:
        NonFiniteLossError: the loss became NaN/inf (names the epoch, the step and NaN/inf samples found).
        diagnose.BatchError: a batch does not fit the model (names the layer and the shapes) or the loss,
            or labels out of range. checkpoint.CheckpointError: a checkpoint that cannot be resumed.
    """
    _check_arguments(model, train, loss_fn, optimizer, epochs, scheduler, scheduler_interval, checkpoint_every)
    device = resolve_device(device, model)
    fns = resolve_metrics(metrics)
    cast = speed.autocast(device, speed.amp_dtype(amp, device))
    nhwc = speed.use_channels_last(channels_last, model, device)
    model.to(device, memory_format=torch.channels_last) if nhwc else model.to(device)
    speed.prefer_fused(optimizer, device)
    saver = _checkpoints(checkpoint_dir, resume, checkpoint_every)
    generators = checkpoint.generators_of(train, val) if saver is not None else []
    history, first, partial, rng_at_save = History(), 1, None, None
    if saver is not None and saver.found():
        ckpt = saver.load(model, optimizer, scheduler, generators, epochs, hook=on_epoch)
        history, first = ckpt.history, ckpt.counters["epoch"] + 1
        partial, rng_at_save = ckpt.extra("partial"), ckpt.state.get("rng")
        if ckpt.counters.get("stopped") or (first > epochs and partial is None):
            return history  # it had finished: the model and random states are as they were at its end
    net = model
    if distributed.launched():
        distributed.setup()
        net, train, val = distributed.wrap(model, device), distributed.shard(train), distributed.shard(val, False)
    if compile:
        net = torch.compile(net)
    per_step = scheduler if scheduler_interval == "step" else None
    all_targets = (diagnose.data_tensors(train) or (None, None))[1]
    bar = _progress(epochs, progress, desc, initial=first - 1)
    try:
        with speed.cudnn_autotune(device):
            for epoch in range(first, epochs + 1):
                start = time.perf_counter()
                distributed.set_epoch(train, epoch)
                if partial is None:
                    lr, spent, stats = optimizer.param_groups[0]["lr"], 0.0, EpochStats(fns)
                    epoch_rng = checkpoint.rng_state(generators) if saver and saver.every_steps else None
                    batches = iter(train)
                else:  # resuming inside this epoch
                    lr, spent, epoch_rng = partial["lr"], partial["seconds"], partial["epoch_rng"]
                    stats = EpochStats(fns)
                    stats.load_state_dict(partial["stats"], device)
                    batches, partial = _replay(partial, rng_at_save, train, generators, stats), None
                check = (all_targets, "train") if epoch == first and not len(stats) else None
                model.train()
                while True:  # the whole epoch, or chunks of checkpoint_every steps with a checkpoint after each
                    chunk = islice(batches, saver.every_steps) if saver and saver.every_steps else batches
                    done = train_steps(net, chunk, stats, loss_fn=loss_fn, optimizer=optimizer, device=device,
                                       clip_grad_norm=clip_grad_norm, scheduler=per_step, cast=cast,
                                       channels_last=nhwc, check=check)
                    check = None
                    if chunk is batches or done < saver.every_steps:
                        break
                    if bool(torch.isfinite(torch.stack(stats.losses)).all()):  # never checkpoint a NaN state
                        saver.save_step(model, optimizer, scheduler, history, generators, epoch, stats, lr,
                                        spent + time.perf_counter() - start, epoch_rng, hook=on_epoch)
                row = {"epoch": epoch, **{f"train_{k}": v for k, v in _train_summary(stats, epoch, train).items()}}
                if val is not None:
                    row.update({f"val_{k}": v for k, v in evaluate(model, val, loss_fn, device, metrics,
                                                                   amp).items()})
                if scheduler is not None and per_step is None:
                    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        scheduler.step(row.get("val_loss", row["train_loss"]))
                    else:
                        scheduler.step()
                row.update(lr=lr, seconds=spent + time.perf_counter() - start)
                history.append(row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith(("loss", "accuracy"))})
                stop = bool(on_epoch is not None and on_epoch(epoch, history))
                if saver is not None and saver.due(final=stop or epoch == epochs):
                    saver.save_epoch(model, optimizer, scheduler, history, generators, epoch, epochs, stop,
                                     hook=on_epoch)
                if stop:
                    break
    finally:
        if bar is not None:
            bar.close()
    return history
