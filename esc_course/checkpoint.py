"""Checkpoints that survive crashes, and loading that never runs code.

One checkpoint is one safetensors file: the tensors (model, optimizer and scheduler state, a half-finished epoch's
per-step losses) in safetensors' flat layout, and everything else (epoch/step counters, History, the python /
numpy / torch / CUDA random states, the data loaders' generator states, a SHA-256 per tensor) as JSON in the
file's header. Nothing is pickled, so loading cannot run code; ``load_weights`` also reads ``torch.save`` files,
with ``weights_only=True`` and no fallback.

Writing goes through ``esc_course.files.atomic_write`` (temporary file, fsync, rename, fsync of the folder): a crash
at any moment leaves the previous checkpoint complete. This module is the file format only; when ``fit`` writes
and how it resumes (its checkpoint policy) is ``esc_course.resume``.

    save("ckpt/last.safetensors", model=model, optimizer=opt, history=history, counters={"epoch": 3})
    ckpt = load("ckpt/last.safetensors", model=model, optimizer=opt)   # fills them in place
    fit(..., checkpoint_dir="ckpt", resume=True)                       # fit's policy: esc_course.resume
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from esc_course.files import atomic_write

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

def write(path: Path | str, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> Path:
    """Write one checkpoint file atomically; ``state`` must be JSON-ready (see ``_encode`` for nested tensors)."""
    path = Path(path)
    table = _cpu_copies(tensors)
    header = {"format": FORMAT, "version": VERSION, "torch": torch.__version__, "saved": time.time(),
              "checksums": {k: _sha256(t) for k, t in table.items()}, **state}
    text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    meta = {"format": "pt", FORMAT: text, f"{FORMAT}.sha256": hashlib.sha256(text.encode()).hexdigest()}
    return _save_file(table, path, meta)


def _cpu_copies(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Own, contiguous CPU copies: safetensors refuses shared or strided storage (tied weights, channels_last)."""
    return {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}


def _save_file(table: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    """safetensors' save_file through ``files.atomic_write``: never a half-written file."""
    from safetensors.torch import save_file

    with atomic_write(path) as tmp:
        save_file(table, tmp, metadata=metadata)
    return path


def save_weights(model: torch.nn.Module, path: Path | str) -> Path:
    """A model's weights alone as a plain safetensors file (what bundles and transfer backbones hold), written
    atomically."""
    return _save_file(_cpu_copies(model.state_dict()), Path(path))


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


def load_model_state(model: nn.Module, weights: Mapping[str, torch.Tensor], path: Path | str, *,
                     head: str | None = None) -> nn.Module:
    """``model.load_state_dict(weights)`` after checking keys and shapes; errors name the file, the keys and the
    shapes. The one weight loader: checkpoints, weights files, bundles and pretrained backbones all load here.

    ``head``: the dotted name of the model's ``nn.Linear`` classifier head (transfer learning). When the weights'
    head has another number of outputs but the same inputs, the head is first replaced by a Linear of the weights'
    size, so they load exactly. A missing ``num_batches_tracked`` (a batch-norm counter, not a weight; torchvision's
    published weights lack it) is left as the model has it.
    """
    if head is not None:
        _fit_head(model, weights, path, head)
    own = model.state_dict()
    missing = [k for k in own if k not in weights and not k.endswith("num_batches_tracked")]
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
        raise CheckpointError(path, f"does not fit this model: it was saved from another model than this "
                              f"{type(model).__name__}: " + "; ".join(parts), key=first)
    model.load_state_dict(dict(weights), strict=False)  # every key checked above; only counters may be absent
    return model


def _fit_head(model: nn.Module, weights: Mapping[str, torch.Tensor], path: Path | str, head: str) -> None:
    """Resize the Linear ``head`` to the weights' number of outputs (same inputs), so the weights load exactly."""
    old = model.get_submodule(head)
    key = f"{head}.weight"
    if not isinstance(old, nn.Linear):
        raise ValueError(f"head={head!r}: expected the name of an nn.Linear in the model, got {type(old).__name__}")
    if key not in weights or tuple(weights[key].shape) == tuple(old.weight.shape):
        return
    shape = tuple(weights[key].shape)
    if len(shape) != 2 or shape[1] != old.in_features:
        raise CheckpointError(path, f"does not fit this model: {key} has shape {shape}, the model's head takes "
                              f"{old.in_features} features", key=key)
    new = nn.Linear(old.in_features, shape[0], bias=old.bias is not None)
    model.set_submodule(head, new.to(device=old.weight.device, dtype=old.weight.dtype))


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
    def history(self) -> list[dict[str, Any]]:
        """The per-epoch rows saved with ``save(..., history=rows)`` (``History(ckpt.history)`` makes a History)."""
        return [_decode(r, {}) for r in self.state.get("history", [])]

    def extra(self, name: str) -> Any:
        """A value saved with ``save(..., extra={name: value})``; tensors inside it are restored."""
        return _decode(self.state.get("extra", {}).get(name), self.tensors)


def save(path: Path | str, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, scheduler=None,
         history: Sequence[Mapping[str, Any]] | None = None, counters: Mapping[str, Any] | None = None,
         generators: Iterable[torch.Generator] = (),
         extra: Mapping[str, Any] | None = None, rng: bool = True) -> Path:
    """Write the training state to ``path`` atomically (the old file stays whole until the new one is complete).

    ``history``: per-epoch rows (a list of dicts, or a History). ``generators``: the data loaders' generators
    (``generators_of(train, val)``), saved with the global random states so the next batches come in the same
    order. ``extra``: more state (tensors allowed).
    """
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in model.state_dict().items()}
    state: dict[str, Any] = {"model": type(model).__name__, "counters": dict(counters or {})}
    if optimizer is not None:
        state["optimizer"] = _encode(optimizer.state_dict(), "optimizer", tensors)
    if scheduler is not None:
        state["scheduler"] = _encode(scheduler.state_dict(), "scheduler", tensors)
    if history is not None:
        state["history"] = [_encode(dict(r), "history", {}) for r in getattr(history, "rows", history)]
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
