"""Checkpoints that survive crashes, and loading that never runs code.

One checkpoint is one safetensors file: the tensors (model, optimizer and scheduler state, a half-finished epoch's
per-step losses) in safetensors' flat layout, and everything else (epoch/step counters, History, the python /
numpy / torch / CUDA random states, the data loaders' generator states, a SHA-256 per tensor) as JSON in the
file's header. Nothing is pickled, so loading cannot run code; ``load_weights`` also reads ``torch.save`` files,
with ``weights_only=True`` and no fallback.

Writing is atomic: a temporary file in the same folder, flush, fsync, rename (POSIX ``rename`` replaces the old
file in one step), fsync of the folder. A crash at any moment leaves the previous checkpoint complete.

    save("ckpt/last.safetensors", model=model, optimizer=opt, history=history, counters={"epoch": 3})
    ckpt = load("ckpt/last.safetensors", model=model, optimizer=opt)   # fills them in place
    fit(..., checkpoint_dir="ckpt", resume=True)                       # what fit does after every epoch
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import json
import math
import os
import random
import re
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from esc_course.files import file_mode

FORMAT = "esc_course.checkpoint"
VERSION = 1
LAST = "last.safetensors"  # the file fit keeps in its checkpoint_dir


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: names the file and, where there is one, the key."""

    def __init__(self, path: Path | str, message: str, key: str | None = None):
        self.path, self.key = Path(path), key
        where = f"{path}" + (f" [{key}]" if key else "")
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------------------------
# Nested state (optimizer/scheduler state dicts) <-> JSON with tensors pulled out into a flat table.
# Tags: {"$t": key} a tensor, {"$f": "nan"} a non-finite float, {"$tuple": [...]}, {"$items": [[k, v], ...]} a
# dict whose keys are not all plain strings (optimizer state is keyed by int).

def _encode(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj
        return {"$t": key}
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$f": repr(obj)}
    if isinstance(obj, (np.integer, np.floating)):
        return _encode(obj.item(), key, tensors)
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, f"{key}/{k}", tensors) for k, v in obj.items()}
        return {"$items": [[_encode(k, f"{key}/k", {}), _encode(v, f"{key}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else items
    raise TypeError(f"cannot store a value of type {type(obj).__name__} at {key!r} in a checkpoint "
                    f"(only tensors, numbers, strings, None, lists, tuples and dicts)")


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$t" in obj:
        return tensors[obj["$t"]]
    if "$f" in obj:
        return float(obj["$f"])
    if "$tuple" in obj:
        return tuple(_decode(v, tensors) for v in obj["$tuple"])
    if "$items" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["$items"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Random states as JSON: python's Mersenne Twister, numpy's legacy global RNG, torch CPU/CUDA and generators.

def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def generators_of(*loaders: Any) -> list[torch.Generator]:
    """The ``torch.Generator``s that decide the batch order of these loaders (TensorLoader, DataLoader, samplers)."""
    found: dict[int, torch.Generator] = {}
    for loader in loaders:
        inner = getattr(loader, "loader", None)  # a distributed shard wraps a TensorLoader
        for obj in (loader, inner, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                    getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            gen = getattr(obj, "generator", None)
            if isinstance(gen, torch.Generator):
                found.setdefault(id(gen), gen)
    return list(found.values())


def rng_state(generators: Iterable[torch.Generator] = ()) -> dict[str, Any]:
    """Every random state a training run draws from, JSON-ready."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
        "generators": [_b64(g.get_state()) for g in generators],
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: Mapping[str, Any], generators: Iterable[torch.Generator] | None = ()) -> None:
    """Put back what ``rng_state`` captured (the generators in the same order; None: leave generators alone)."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(state["torch"]))
    if generators is None:
        generators, saved = [], []
    else:
        generators, saved = list(generators), state.get("generators", [])
    if len(saved) != len(generators):
        raise ValueError(f"the checkpoint holds {len(saved)} data loader generator states, but these loaders have "
                         f"{len(generators)}: resume with loaders built the same way (generator= or not)")
    for g, s in zip(generators, saved):
        g.set_state(_unb64(s))
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [_unb64(s) for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------------------------------------------------------
# The file: safetensors with the JSON state in its header, written atomically.

def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems (and Windows) do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write(path: Path | str, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> Path:
    """Write one checkpoint file atomically; ``state`` must be JSON-ready (see ``_encode`` for nested tensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _cpu_copies(tensors)
    header = {"format": FORMAT, "version": VERSION, "torch": torch.__version__, "saved": time.time(),
              "checksums": {k: _sha256(t) for k, t in table.items()}, **state}
    text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    meta = {"format": "pt", FORMAT: text, f"{FORMAT}.sha256": hashlib.sha256(text.encode()).hexdigest()}
    return _atomic_save_file(table, path, meta)


def _cpu_copies(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Own, contiguous CPU copies: safetensors refuses shared or strided storage (tied weights, channels_last)."""
    return {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}


def _atomic_save_file(table: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    """safetensors' save_file to a temporary file in the same folder, fsync, rename: never a half-written file."""
    from safetensors.torch import save_file

    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(table, tmp, metadata=metadata)
        os.chmod(tmp, file_mode())  # as a plain open() would create it (mkstemp's is 0o600)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # and the rename itself survives a power cut
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_weights(model: torch.nn.Module, path: Path | str) -> Path:
    """A model's weights alone as a plain safetensors file (what bundles and transfer backbones hold), written
    atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _atomic_save_file(_cpu_copies(model.state_dict()), path)


def _kind(path: Path) -> str:
    """'safetensors', 'truncated', 'torch' (zip or pickle written by torch.save) or 'unknown', from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":  # safetensors: u64 header length, then the JSON header
        return "safetensors" if struct.unpack("<Q", head[:8])[0] < path.stat().st_size else "truncated"
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return "torch"  # a zip archive (torch.save) or a pickle (PROTO opcode, protocols 2-5)
    return "unknown"


def read(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors on the CPU, JSON state) of a checkpoint file, verified against its checksums."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such checkpoint file")
    kind = _kind(path)
    if kind == "torch":
        raise CheckpointError(path, "is a torch.save (pickle) file, not an esc_course checkpoint; checkpoints are "
                              "never unpickled. To take only the weights from it use load_weights(path, model), "
                              "which reads it with weights_only=True")
    if kind == "truncated":
        raise CheckpointError(path, "is truncated: its header is cut off (a partial copy or download?)", key="header")
    if kind != "safetensors":
        raise CheckpointError(path, "is not a safetensors checkpoint (truncated, corrupted or another format)",
                              key="header")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(path, f"cannot be read, truncated or corrupted ({err})", key="header") from err
    if FORMAT not in meta:
        return tensors, {}
    if hashlib.sha256(meta[FORMAT].encode()).hexdigest() != meta.get(f"{FORMAT}.sha256"):
        raise CheckpointError(path, "corrupted: the JSON state does not match its SHA-256", key="header")
    try:
        state = json.loads(meta[FORMAT])
    except json.JSONDecodeError as err:
        raise CheckpointError(path, f"its JSON state is corrupted ({err})", key="header") from err
    sums = state.get("checksums", {})
    for key in sorted(set(sums) | set(tensors)):
        if key not in tensors or key not in sums:
            raise CheckpointError(path, "the tensor table and the checksums disagree (corrupted)", key=key)
        if _sha256(tensors[key]) != sums[key]:
            raise CheckpointError(path, "corrupted: the tensor's bytes do not match its SHA-256", key=key)
    return tensors, state


# ---------------------------------------------------------------------------------------------------------------
# Model weights: strict key and shape checks that say which keys are wrong.

def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_model_state(model: nn.Module, weights: Mapping[str, torch.Tensor], path: Path | str) -> None:
    """``model.load_state_dict(weights)`` after checking keys and shapes; errors name the file and the keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatch: " + "; ".join(
                f"{k!r} is {tuple(weights[k].shape)} in the checkpoint but {tuple(own[k].shape)} in the model"
                for k in shapes[:5]))
        if missing:
            parts.append(f"missing keys (in the model, not in the checkpoint): {', '.join(map(repr, missing[:8]))}"
                         + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
        if unexpected:
            parts.append(f"unexpected keys (in the checkpoint, not in the model): "
                         f"{', '.join(map(repr, unexpected[:8]))}"
                         + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else ""))
        first = (shapes or missing or unexpected)[0]
        raise CheckpointError(path, f"was saved from another model than this {type(model).__name__}: "
                              + "; ".join(parts), key=first)
    model.load_state_dict(dict(weights))


def _torch_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch.save file, unpickled with weights_only=True (and never otherwise)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError for truncated zips, ...
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        refused = found.group(1) if found else None
        why = (f"refused: unpickling it would load {refused!r}, which is not plain tensor data"
               if refused else f"cannot be read with weights_only=True, truncated, corrupted or unsafe ({err})")
        raise CheckpointError(path, why, key=refused) from err
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(path, "holds no state dict of tensors")
    return obj


def read_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """The model weights (a state dict on the CPU) in an esc_course checkpoint, a plain safetensors file, or a
    torch.save file (read with ``weights_only=True``: a file that would run code is refused)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file (expected a .safetensors or .pt/.pth file)")
    if _kind(path) == "torch":
        return _torch_weights(path)
    tensors, state = read(path)
    return _prefixed(tensors, "model/") if state else tensors


def load_weights(path: Path | str, model: nn.Module) -> nn.Module:
    """``read_weights(path)`` into ``model``, with the key and shape checks of ``load_model_state``."""
    load_model_state(model, read_weights(path), path)
    return model


# ---------------------------------------------------------------------------------------------------------------
# save / load: the whole training state.

@dataclass
class Checkpoint:
    """What ``load`` read: the counters and history, the random states, and any partial-epoch tensors."""

    path: Path
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(repr=False)

    @property
    def counters(self) -> dict[str, Any]:
        return dict(self.state.get("counters", {}))

    @property
    def history(self):
        from esc_course.train import History

        return History([_decode(r, {}) for r in self.state.get("history", [])])

    def extra(self, name: str) -> Any:
        """A value saved with ``save(..., extra={name: value})``; tensors inside it are restored."""
        return _decode(self.state.get("extra", {}).get(name), self.tensors)


def save(path: Path | str, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, scheduler=None,
         history=None, counters: Mapping[str, Any] | None = None, generators: Iterable[torch.Generator] = (),
         extra: Mapping[str, Any] | None = None, rng: bool = True) -> Path:
    """Write the training state to ``path`` atomically (the old file stays whole until the new one is complete).

    ``generators``: the data loaders' generators (``generators_of(train, val)``), saved with the global random
    states so the next batches come in the same order. ``extra``: more state (tensors allowed).
    """
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in model.state_dict().items()}
    state: dict[str, Any] = {"model": type(model).__name__, "counters": dict(counters or {})}
    if optimizer is not None:
        state["optimizer"] = _encode(optimizer.state_dict(), "optimizer", tensors)
    if scheduler is not None:
        state["scheduler"] = _encode(scheduler.state_dict(), "scheduler", tensors)
    if history is not None:
        state["history"] = [_encode(dict(r), "history", {}) for r in history.rows]
    if extra:
        state["extra"] = _encode(dict(extra), "extra", tensors)
    if rng:
        state["rng"] = rng_state(generators)
    return write(path, tensors, state)


def load(path: Path | str, *, model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None,
         scheduler=None, generators: Iterable[torch.Generator] | None = None, restore_rng: bool = True,
         check: Callable[[dict[str, Any]], None] | None = None) -> Checkpoint:
    """Read a checkpoint written by ``save`` and fill ``model``/``optimizer``/``scheduler`` in place.

    ``check``, if given, is called with the checkpoint's JSON state before anything is filled in; it raises
    CheckpointError to refuse the checkpoint (``fit`` refuses one that is past the epochs asked for).

    With ``restore_rng`` the global random states (and ``generators``, the data loaders' generators in the order
    they were saved; None leaves them alone) are set back as they were when it was saved.
    Raises CheckpointError (naming the file and the key) for a missing, truncated, corrupted, pickled or
    foreign checkpoint; nothing is changed unless every check passes.
    """
    path = Path(path)
    tensors, state = read(path)
    if state.get("format") != FORMAT:
        raise CheckpointError(path, "is a safetensors file but not an esc_course checkpoint (no training state); "
                              "use load_weights(path, model) for plain weights", key="header")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(path, f"was written by a newer esc_course (format {state['version']}, "
                              f"this one reads up to {VERSION})", key="version")
    if check is not None:
        check(state)
    if model is not None:
        load_model_state(model, _prefixed(tensors, "model/"), path)
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        if name not in state:
            raise CheckpointError(path, f"holds no {name} state", key=name)
        try:
            obj.load_state_dict(_decode(state[name], tensors))
        except (ValueError, KeyError, RuntimeError, TypeError) as err:
            raise CheckpointError(path, f"its {name} state does not fit this {type(obj).__name__}: {err}",
                                  key=name) from err
    if restore_rng and "rng" in state:
        try:
            set_rng_state(state["rng"], generators)
        except ValueError as err:
            raise CheckpointError(path, str(err), key="rng") from err
    return Checkpoint(path, state, tensors)


# ---------------------------------------------------------------------------------------------------------------
# Automatic checkpoints for whole lab runs: `esc-course lab run NAME --resume`.

@dataclass
class _AutoCheckpoints:
    folder: Path
    resume: bool
    min_seconds: float
    count: int = 0


_AUTO: contextvars.ContextVar[_AutoCheckpoints | None] = contextvars.ContextVar("esc_auto_checkpoints",
                                                                                  default=None)


@contextlib.contextmanager
def run_checkpoints(folder: Path | str, resume: bool = False, min_seconds: float = 30.0) -> Iterator[Path]:
    """Within this block every ``fit`` without its own ``checkpoint_dir`` checkpoints to ``folder/fit-NNN``
    (the N-th fit call of the run), at most every ``min_seconds`` and always after its last epoch.

    A lab is deterministic, so its N-th fit in a resumed run is the N-th fit of the killed one: finished fits load
    their last state at once (weights and random states), the interrupted one continues from its last checkpoint.
    """
    token = _AUTO.set(_AutoCheckpoints(Path(folder), resume, min_seconds))
    try:
        yield Path(folder)
    finally:
        _AUTO.reset(token)


def next_run_checkpoint() -> tuple[Path, bool, float] | None:
    """For fit: (folder, resume, min_seconds) of the next automatic checkpoint, or None outside run_checkpoints."""
    auto = _AUTO.get()
    if auto is None:
        return None
    auto.count += 1
    return auto.folder / f"fit-{auto.count:03d}", auto.resume, auto.min_seconds


# ---------------------------------------------------------------------------------------------------------------
# What fit keeps in its checkpoint_dir.

class FitCheckpoints:
    """``folder/last.safetensors`` of one ``fit`` call: rewritten after every epoch (at most every ``min_seconds``,
    always after the last one) and, with ``every_steps``, every that many steps inside an epoch."""

    def __init__(self, folder: Path, resume: bool, every_steps: int | None = None, min_seconds: float = 0.0):
        self.folder, self.path = Path(folder), Path(folder) / LAST
        self.resume, self.every_steps, self.min_seconds = resume, every_steps, min_seconds
        self._saved_at = time.monotonic()
        if self.path.exists() and not resume:
            raise FileExistsError(f"checkpoint_dir={str(folder)!r} already holds a checkpoint ({self.path}); pass "
                                  f"resume=True to continue that run, or choose another checkpoint_dir "
                                  f"(nothing was changed)")

    def found(self) -> bool:
        return self.resume and self.path.exists()

    def load(self, model, optimizer, scheduler, generators, epochs: int, hook=None) -> Checkpoint:
        def check(state: dict[str, Any]) -> None:  # before the model, optimizer or random states are touched
            done = state.get("counters", {}).get("epoch")
            if not isinstance(done, int):
                raise CheckpointError(self.path, "holds no epoch counter: not written by fit", key="counters")
            if done > epochs:
                raise CheckpointError(self.path, f"is at epoch {done}, past epochs={epochs}; epochs is the total "
                                      f"number of epochs: pass epochs >= {done}", key="counters")

        ckpt = load(self.path, model=model, optimizer=optimizer, scheduler=scheduler, generators=generators,
                    check=check)
        self.restore_hook(hook, ckpt)
        return ckpt

    def due(self, final: bool) -> bool:
        return final or self.min_seconds <= 0 or time.monotonic() - self._saved_at >= self.min_seconds

    def _write(self, **kwargs) -> None:
        from esc_course import distributed

        if distributed.is_main():  # one writer; every process can read it when resuming
            save(self.path, **kwargs)
        self._saved_at = time.monotonic()

    @staticmethod
    def hook_state(hook) -> dict[str, Any]:
        """An ``on_epoch`` hook with ``state_dict()``/``load_state_dict()`` (e.g. early stopping's best weights)
        is saved with the run, like the optimizer."""
        return {"on_epoch": hook.state_dict()} if hasattr(hook, "state_dict") else {}

    @staticmethod
    def restore_hook(hook, ckpt: Checkpoint) -> None:
        if hasattr(hook, "load_state_dict") and "on_epoch" in ckpt.state.get("extra", {}):
            hook.load_state_dict(ckpt.extra("on_epoch"))

    def save_epoch(self, model, optimizer, scheduler, history, generators, epoch: int, epochs: int,
                   stopped: bool, hook=None) -> None:
        self._write(model=model, optimizer=optimizer, scheduler=scheduler, history=history, generators=generators,
                    counters={"epoch": epoch, "step": 0, "epochs": epochs, "stopped": stopped},
                    extra=self.hook_state(hook))

    def save_step(self, model, optimizer, scheduler, history, generators, epoch: int, stats, lr: float,
                  seconds: float, epoch_rng: dict, hook=None) -> None:
        """Inside epoch ``epoch``: the epoch's statistics so far and the random state it began with ride along."""
        partial = {"lr": lr, "seconds": seconds, "stats": stats.state_dict(), "epoch_rng": epoch_rng}
        self._write(model=model, optimizer=optimizer, scheduler=scheduler, history=history, generators=generators,
                    counters={"epoch": epoch - 1, "step": len(stats), "stopped": False},
                    extra={"partial": partial, **self.hook_state(hook)})
