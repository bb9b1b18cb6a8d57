"""The plain training loop: ``train_epoch``, ``evaluate`` and ``fit``.

Nothing is hidden: one step is forward, loss, backward, (clip), optimizer step, in ``train_steps``. Losses and
metrics stay on the device during the epoch and are read back once at its end (no ``.item()`` per step).

``fit`` is the loop over epochs: ``train_epoch``, ``evaluate``, the history row, the hook, and
``saver.after_epoch`` (``esc_course.resume``: throttled checkpoints in ``checkpoint_dir``; ``resume=True``
continues exactly where a killed run stopped, inside an epoch too), bf16 autocast / channels_last / fused optimizers / cuDNN autotuning
on CUDA (``esc_course.speed``), DistributedDataParallel under torchrun (``esc_course.distributed``), and clear
errors for bad input (``esc_course.diagnose``: which layer got which shape, labels out of range, NaN inputs).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from esc_course import diagnose, distributed, speed
from esc_course.data.loader import TensorLoader
from esc_course.history import EpochStats, History, NonFiniteLossError
from esc_course.metrics import Metric, resolve_metrics
from esc_course.resume import CHECKPOINT_SECONDS, Saver

Batch = tuple[torch.Tensor, torch.Tensor]


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


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
    # a TensorLoader on this device yields batches already here: nothing to move (the common case, checked once)
    move = not (isinstance(batches, TensorLoader) and batches.device == device)
    steps = 0
    for x, y in batches:
        if move:
            x, y = _to_device(x, device), _to_device(y, device)
        if channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with cast:
            try:
                out = model(x)
            except diagnose.SHAPE_ERRORS as err:  # the layer and the shapes, as _forward
                if isinstance(err, torch.OutOfMemoryError):
                    raise
                raise diagnose.forward_error(model, x, err) from err
            if check is not None:
                diagnose.check_batch(x, y, out, *check)
                check = None
            try:
                loss = loss_fn(out, y)
            except diagnose.SHAPE_ERRORS as err:
                raise diagnose.loss_error(loss_fn, out, y, err, "train") from err
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
                amp: str | bool = "auto", channels_last: bool = False, stats: EpochStats | None = None,
                check: tuple | None = None, prefix: str = "") -> dict[str, float]:
    """One pass over ``data`` with updates; returns the epoch's mean loss and metrics on the training batches,
    named ``prefix + name`` (fit's rows: ``prefix="train_"``).

    ``scheduler``, if given, is stepped after every batch (per-step schedules such as warmup or one-cycle).
    ``amp``: "auto" (bf16 autocast on CUDA that supports it), "bf16" or "off". ``stats``: count into these (a
    resumed epoch's so far) instead of new ones for ``metrics``. ``check``: see ``train_steps``.
    Raises NonFiniteLossError naming the epoch, the step and the NaN/inf samples of ``data`` if any.
    """
    if not isinstance(device, torch.device):
        device = torch.device(device) if device is not None else _model_device(model)
    stats = EpochStats(resolve_metrics(metrics)) if stats is None else stats
    model.train()
    train_steps(model, data, stats, loss_fn=loss_fn, optimizer=optimizer, device=device,
                clip_grad_norm=clip_grad_norm, scheduler=scheduler, channels_last=channels_last, check=check,
                cast=speed.autocast(device, speed.amp_dtype(amp, device)))
    try:
        return stats.summarize(epoch, prefix)
    except NonFiniteLossError as err:
        detail = diagnose.find_nonfinite(data)  # only now, on the error path: which samples are NaN/inf
        if detail:
            raise NonFiniteLossError(err.epoch, err.step, err.value, detail) from None
        raise


@torch.no_grad()
def evaluate(model: nn.Module, data: Iterable[Batch], loss_fn: Callable | None = None,
             device: torch.device | str | None = None, metrics: Sequence[str | Metric] = ("accuracy",),
             amp: str | bool = "auto", prefix: str = "") -> dict[str, float]:
    """Mean loss (if ``loss_fn``) and metrics over ``data`` in eval mode, named ``prefix + name``; the model's
    mode is restored."""
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
        result = stats.summarize(None, prefix)
    finally:
        model.train(was_training)
    if loss_fn is None:
        result.pop(prefix + "loss")
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


def _parallel(model: nn.Module, train, val, device: torch.device, compile: bool):
    """(the module to train through, train, val): DDP and per-rank shards under torchrun, torch.compile if asked."""
    net = model
    if distributed.launched():
        distributed.setup()
        net, train, val = distributed.wrap(model, device), distributed.shard(train), distributed.shard(val, False)
    return (torch.compile(net) if compile else net), train, val


def _step_per_epoch(scheduler, row: dict[str, float]) -> None:
    """An epoch's scheduler step; ReduceLROnPlateau gets the validation loss (else the training loss)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(row.get("val_loss", row["train_loss"]))
    else:
        scheduler.step()


def _show(bar, row: dict[str, float]) -> None:
    bar.update(1)
    bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith(("loss", "accuracy"))})


def fit(model: nn.Module, train: Iterable[Batch], val: Iterable[Batch] | None = None, *, loss_fn: Callable,
        optimizer: torch.optim.Optimizer, epochs: int, device: torch.device | str | None = None, scheduler=None,
        scheduler_interval: str = "epoch", clip_grad_norm: float | None = None,
        metrics: Sequence[str | Metric] = ("accuracy",), progress: bool = True,
        on_epoch: Callable[[int, History], bool | None] | None = None, desc: str = "fit",
        checkpoint_dir: str | Path | None = None, resume: bool = False, checkpoint_every: int | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS, amp: str | bool = "auto", channels_last: str | bool = "auto",
        compile: bool = False) -> History:
    """Train ``model`` for ``epochs`` passes over ``train``; evaluate on ``val`` after each; return the History.

    Args:
        train, val: any iterables of ``(x, y)`` batches (TensorLoader, DataLoader, a list).
        scheduler: a torch LR scheduler, stepped once per epoch (``scheduler_interval="epoch"``) or after every
            batch (``"step"``). ReduceLROnPlateau gets the validation loss (else the training loss).
        clip_grad_norm: clip the global gradient norm to this value before each step.
        on_epoch: called as ``on_epoch(epoch, history)`` after each epoch; return True to stop early. A hook
            with ``state_dict()`` and ``load_state_dict()`` is checkpointed and resumed with the run.
        checkpoint_dir: keep ``checkpoint_dir/last.safetensors`` (model, optimizer, scheduler, history, counters,
            random and loader states), written after an epoch at most every ``checkpoint_seconds`` (30 s; 0: every
            epoch) and always after the last epoch and before an early stop (``esc_course.resume``).
        checkpoint_every: also write inside an epoch, after every that many steps (same throttle).
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
    nhwc = speed.use_channels_last(channels_last, model, device)
    model.to(device, memory_format=torch.channels_last) if nhwc else model.to(device)
    speed.prefer_fused(optimizer, device)
    saver = Saver(checkpoint_dir, resume, model=model, optimizer=optimizer, scheduler=scheduler, hook=on_epoch,
                  loaders=(train, val), every_steps=checkpoint_every, every_seconds=checkpoint_seconds)
    history, first = saver.restore(epochs)  # resuming: model, optimizer, ... and random states as they were
    if saver.finished:
        return history
    net, train, val = _parallel(model, train, val, device, compile)
    per_step = scheduler if scheduler_interval == "step" else None
    check = ((diagnose.data_tensors(train) or (None, None))[1], "train")  # the first batch, before its step
    bar = _progress(epochs, progress, desc, initial=first - 1)
    try:
        with speed.cudnn_autotune(device):
            for epoch in range(first, epochs + 1):
                distributed.set_epoch(train, epoch)
                part = saver.begin(epoch, train, fns, device, optimizer.param_groups[0]["lr"], history)
                row = {"epoch": epoch}
                row |= train_epoch(net, part.batches, loss_fn=loss_fn, optimizer=optimizer, device=device,
                                   clip_grad_norm=clip_grad_norm, scheduler=per_step, epoch=epoch, amp=amp,
                                   channels_last=nhwc, stats=part.stats, prefix="train_",
                                   check=check if epoch == first else None)
                if val is not None:
                    row |= evaluate(model, val, loss_fn, device, fns, amp, prefix="val_")
                if scheduler is not None and per_step is None:
                    _step_per_epoch(scheduler, row)
                row |= {"lr": part.lr, "seconds": time.perf_counter() - part.started}
                history.append(row)
                if bar is not None:
                    _show(bar, row)
                stop = bool(on_epoch is not None and on_epoch(epoch, history))
                saver.after_epoch(epoch, epochs, history, stop)
                if stop:
                    break
    finally:
        if bar is not None:
            bar.close()
    return history
