"""fit's checkpoint policy: when to write, how to resume, and the mid-epoch replay.

``esc_course.checkpoint`` is the file format (save, a safe load, read); this module decides *when* ``fit`` writes
``checkpoint_dir/last.safetensors`` and how a resumed ``fit`` continues exactly where the killed one stopped:

- writes are throttled: at most one every ``every_seconds`` (30 s by default), and always after the last epoch and
  before an early stop, so 300 short epochs cost one or two writes, not 300;
- with ``every_steps``, a write may also happen inside an epoch, every that many steps; it carries the epoch's
  per-step statistics so far and the random state the epoch began with, so a resumed run replays that epoch's
  batch order and skips the batches already trained on;
- before anything is changed (model, optimizer, random states) the checkpoint is checked: an existing checkpoint
  is never overwritten without ``resume=True``, one past ``epochs`` is refused;
- never a NaN state: a step checkpoint is skipped while a loss of the epoch is NaN/inf; an epoch whose loss is NaN
  raises before its checkpoint, so the last checkpoint on disk is the last good state;
- under torchrun only rank 0 writes; every rank reads the same file when resuming.

    saver = Saver(checkpoint_dir, resume, model=model, optimizer=opt, loaders=(train, val))
    history, first = saver.restore(epochs)           # History() and 1 when starting fresh
    for epoch in range(first, epochs + 1):
        part = saver.begin(epoch, train, metrics, device, optimizer.param_groups[0]["lr"], history)
        ...train on part.batches, counting into part.stats...
        saver.after_epoch(epoch, epochs, history, stop)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import torch

from esc_course import checkpoint, distributed
from esc_course.checkpoint import LAST, CheckpointError
from esc_course.history import EpochStats, History

CHECKPOINT_SECONDS = 30.0  # the default throttle: at most one checkpoint write this often


class Epoch(NamedTuple):
    """One epoch as fit trains it: the batches to take, the statistics to count into (a resumed epoch's so far),
    the learning rate its row reports, and when it started (perf_counter, earlier by a resumed epoch's seconds)."""

    batches: Iterable
    stats: EpochStats
    lr: float
    started: float


class Replay:
    """The batches of one epoch, with a step checkpoint after every ``every_steps`` of them (when one is due)."""

    def __init__(self, saver: Saver, batches: Iterator, loader: Any, epoch: int, part: dict[str, Any]):
        self.saver, self.batches, self.epoch, self.part = saver, batches, epoch, part
        self.loader = getattr(loader, "loader", loader)  # for diagnose: the data behind a distributed shard

    def __iter__(self) -> Iterator:
        every, stats = self.saver.every_steps, self.part["stats"]
        while True:
            n = 0
            for n, batch in enumerate(islice(self.batches, every), 1):  # noqa: B007 - n counts the chunk
                yield batch
            if n < every:
                return
            # the chunk's last step is done (its values are in stats): checkpoint here if one is due
            if self.saver.due() and bool(torch.isfinite(torch.stack(stats.losses)).all()):
                self.saver.save_step(self.epoch, self.part)


class Saver:
    """``folder/last.safetensors`` of one ``fit`` call; with ``folder=None`` it does nothing (and costs nothing).

    Args:
        folder: fit's ``checkpoint_dir``. resume: continue from its checkpoint if there is one.
        every_steps: also consider a checkpoint every that many steps inside an epoch.
        every_seconds: at most one write this often (0: every epoch / every ``every_steps``); the last epoch and
            an early stop are always written.
        model, optimizer, scheduler: what is saved and restored. hook: fit's ``on_epoch``; one with
            ``state_dict()``/``load_state_dict()`` is saved with the run. loaders: fit's train and val loaders,
            whose generators decide the batch order.
    """

    def __init__(self, folder: str | Path | None, resume: bool = False, *, model, optimizer, scheduler=None,
                 hook=None, loaders: Iterable = (), every_steps: int | None = None,
                 every_seconds: float = CHECKPOINT_SECONDS):
        if isinstance(every_seconds, bool) or not isinstance(every_seconds, (int, float)) or not every_seconds >= 0:
            raise ValueError(f"checkpoint_seconds must be a number of seconds >= 0, got {every_seconds!r}")
        self.partial: dict[str, Any] | None = None  # a half-finished epoch read from the checkpoint
        self.rng_at_save: dict[str, Any] | None = None
        self.finished = False  # the checkpointed run had already ended
        self._blank: EpochStats | None = None  # what each epoch's statistics are made from
        if folder is None:
            if resume:
                raise ValueError("resume=True needs checkpoint_dir: the folder the interrupted fit wrote to")
            self.path = None
            return
        self.folder, self.path, self.resume = Path(folder), Path(folder) / LAST, resume
        if self.path.exists() and not resume:
            raise FileExistsError(f"checkpoint_dir={str(folder)!r} already holds a checkpoint ({self.path}); pass "
                                  f"resume=True to continue that run, or choose another checkpoint_dir "
                                  f"(nothing was changed)")
        self.model, self.optimizer, self.scheduler, self.hook = model, optimizer, scheduler, hook
        self.every_steps, self.every_seconds = every_steps, float(every_seconds)
        self.generators = checkpoint.generators_of(*loaders)
        self._saved_at = time.monotonic()

    # --- resuming ----------------------------------------------------------------------------------------------

    def restore(self, epochs: int) -> tuple[History, int]:
        """(History so far, first epoch to train). Fills model, optimizer, scheduler, hook and random states in
        from the checkpoint if resuming; ``finished`` says the checkpointed run had already ended."""
        if self.path is None or not (self.resume and self.path.exists()):
            return History(), 1

        def check(state: dict[str, Any]) -> None:  # before the model, optimizer or random states are touched
            done = state.get("counters", {}).get("epoch")
            if not isinstance(done, int):
                raise CheckpointError(self.path, "holds no epoch counter: not written by fit", key="counters")
            if done > epochs:
                raise CheckpointError(self.path, f"is at epoch {done}, past epochs={epochs}; epochs is the total "
                                      f"number of epochs: pass epochs >= {done}", key="counters")

        ckpt = checkpoint.load(self.path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                               generators=self.generators, check=check)
        if hasattr(self.hook, "load_state_dict") and "on_epoch" in ckpt.state.get("extra", {}):
            self.hook.load_state_dict(ckpt.extra("on_epoch"))
        history = History(ckpt.history)
        first = ckpt.counters["epoch"] + 1
        self.partial, self.rng_at_save = ckpt.extra("partial"), ckpt.state.get("rng")
        # it had finished: the model and random states are as they were at its end
        self.finished = bool(ckpt.counters.get("stopped")) or (first > epochs and self.partial is None)
        return history, first

    def begin(self, epoch: int, train: Iterable, metrics: dict, device: torch.device, lr: float,
              history: History) -> Epoch:
        """The batches and statistics of ``epoch``: all of ``train`` and empty statistics, or, resuming inside
        this epoch, the rest of its batches in the same order and the statistics of those already taken."""
        blank = self._blank
        if blank is None or blank.fns is not metrics:
            blank = self._blank = EpochStats(metrics)
        stats, started = blank.fresh(), time.perf_counter()
        if self.path is None:
            return Epoch(train, stats, lr, started)
        if self.partial is None:
            part = {"lr": lr, "started": started, "stats": stats, "history": history,
                    "epoch_rng": checkpoint.rng_state(self.generators) if self.every_steps else None}
            batches = iter(train)
        else:  # resuming inside this epoch
            part, self.partial = self.partial, None
            stats.load_state_dict(part["stats"], device)
            lr, started = part["lr"], started - part["seconds"]
            part = {"lr": lr, "started": started, "stats": stats, "history": history, "epoch_rng": part["epoch_rng"]}
            batches = self._replay(train, part["epoch_rng"], len(stats))
        if not self.every_steps:
            return Epoch(batches, stats, lr, started)
        return Epoch(Replay(self, batches, train, epoch, part), stats, lr, started)

    def _replay(self, train: Iterable, epoch_rng: dict, done: int) -> Iterator:
        """The batch order of the epoch again, past the ``done`` batches already trained on."""
        checkpoint.set_rng_state(epoch_rng, self.generators)  # the random state as the epoch began
        batches = iter(train)
        for _ in range(done):
            if next(batches, None) is None:
                raise ValueError("the training data yield fewer batches than when the checkpoint was written")
        checkpoint.set_rng_state(self.rng_at_save, self.generators)  # and as it was when the checkpoint was written
        return batches

    # --- writing -----------------------------------------------------------------------------------------------

    def due(self) -> bool:
        """A write is due: ``every_seconds`` have passed since the last one."""
        return time.monotonic() - self._saved_at >= self.every_seconds

    def after_epoch(self, epoch: int, epochs: int, history: History, stopped: bool) -> None:
        """Write the end-of-epoch checkpoint if one is due (always after the last epoch and before a stop)."""
        if self.path is None or not (stopped or epoch == epochs or self.due()):
            return
        self._write(history, {"epoch": epoch, "step": 0, "epochs": epochs, "stopped": stopped}, {})

    def save_step(self, epoch: int, part: dict[str, Any]) -> None:
        """Inside epoch ``epoch``: the epoch's statistics so far and the random state it began with ride along."""
        stats = part["stats"]
        partial = {"lr": part["lr"], "seconds": time.perf_counter() - part["started"], "stats": stats.state_dict(),
                   "epoch_rng": part["epoch_rng"]}
        self._write(part["history"], {"epoch": epoch - 1, "step": len(stats), "stopped": False}, {"partial": partial})

    def _write(self, history: History, counters: dict[str, Any], extra: dict[str, Any]) -> None:
        if hasattr(self.hook, "state_dict"):  # e.g. early stopping's best weights, saved like the optimizer
            extra = {**extra, "on_epoch": self.hook.state_dict()}
        if distributed.is_main():  # one writer; every process can read it when resuming
            checkpoint.save(self.path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                            history=history.rows, counters=counters, generators=self.generators, extra=extra)
        self._saved_at = time.monotonic()
