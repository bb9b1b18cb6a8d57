"""Clear errors for batches that do not fit: which layer got which shape, labels out of range, non-finite inputs.

``fit`` and ``evaluate`` call these only when something has already gone wrong (or once, on the first batch), so
the training loop pays nothing per step. One mechanism serves every model: when a forward pass fails, it is run
again with forward hooks that record the path of modules entered and not left; the innermost one is the layer that
failed, and its type says what it expects (``Linear``: ``(..., in_features)``, ``Conv2d``: ``(N, C, H, W)``, ...).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# exceptions a bad batch raises inside a model or a loss (CUDA out-of-memory is a RuntimeError, left alone)
SHAPE_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)
IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's default ignore_index (padding in sequence labels)


class BatchError(ValueError):
    """A batch that does not fit the model or the loss; names the layer or argument, what it got, what is valid."""


class LayerInputError(BatchError):
    """A layer got an input of the wrong shape or dtype; ``layer`` is its name in ``model.named_modules()``."""

    def __init__(self, message: str, layer: str, got: str, expected: str | None):
        self.layer, self.got, self.expected = layer, got, expected
        super().__init__(message)


class LabelError(BatchError):
    """Class labels outside 0..C-1 for a model with C outputs."""


class NonFiniteInputError(BatchError):
    """Inputs (or float targets) with NaN or inf."""


def describe(value: Any) -> str:
    """``(32, 3, 28, 28) float32`` for a tensor, the type name otherwise."""
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    return type(value).__name__


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        if isinstance(model, (DataParallel, DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and type(model).__name__ == "OptimizedModule":
            model = model._orig_mod
        else:
            return model


def expected_input(module: nn.Module) -> str | None:
    """What a built-in layer takes, in the notation of the PyTorch docs; None for other modules."""
    param = next(module.parameters(recurse=False), None)
    dt = f" {str(param.dtype).removeprefix('torch.')}" if param is not None else ""
    if isinstance(module, nn.Linear):
        return f"(..., {module.in_features}){dt}"
    if isinstance(module, nn.modules.conv._ConvNd):
        spatial = {1: "L", 2: "H, W", 3: "D, H, W"}[len(module.kernel_size)]
        return f"(N, {module.in_channels}, {spatial}){dt}"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        c = module.num_features
        shape = {nn.BatchNorm1d: f"(N, {c}) or (N, {c}, L)", nn.BatchNorm2d: f"(N, {c}, H, W)",
                 nn.BatchNorm3d: f"(N, {c}, D, H, W)"}.get(type(module), f"(N, {c}, ...)")
        return f"{shape}{dt}, with N > 1 in training mode"
    if isinstance(module, nn.RNNBase):
        return (f"(N, T, {module.input_size})" if module.batch_first else f"(T, N, {module.input_size})") + dt
    if isinstance(module, nn.Embedding):
        return f"integer indices (int64) in 0..{module.num_embeddings - 1}, any shape"
    if isinstance(module, nn.LayerNorm):
        return f"(..., {', '.join(map(str, module.normalized_shape))}){dt}"
    if isinstance(module, nn.GroupNorm):
        return f"(N, {module.num_channels}, ...){dt}"
    if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        return f"(N, C, ...) with each spatial size >= the kernel size {module.kernel_size}"
    return None


def _failing_layer(model: nn.Module, x: Any) -> tuple[str, nn.Module, tuple] | None:
    """Run ``model(x)`` again with hooks; return (name, module, inputs) of the innermost module that raised."""
    stack: list[tuple[str, nn.Module, tuple]] = []

    def enter(name):
        def hook(module, args):
            stack.append((name, module, args))
        return hook

    def leave(module, args, output):
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
    try:
        with torch.no_grad():
            model(x)
    except Exception:  # noqa: BLE001 - we only want to know where it happens
        return stack[-1] if stack else None
    finally:
        for h in handles:
            h.remove()
    return None  # it worked the second time: nothing to explain


def forward_error(model: nn.Module, x: Any, err: BaseException) -> BaseException:
    """A LayerInputError naming the layer that failed on ``x`` (or ``err`` itself when that cannot be told)."""
    model = unwrap(model)
    found = _failing_layer(model, x)
    if found is None:
        return err
    name, module, args = found
    layer = name or "(the model itself)"
    got = describe(args[0] if len(args) == 1 else args)
    expected = expected_input(module)
    msg = f"the forward pass failed in layer {layer!r} ({type(module).__name__}): it got {got}"
    if expected:
        msg += f", but expects {expected}"
    msg += f". The batch given to the model was x = {describe(x)}."
    first = args[0] if args else None
    if (isinstance(module, nn.modules.batchnorm._BatchNorm) and isinstance(first, torch.Tensor)
            and first.shape[0] == 1 and module.training):
        msg += (" BatchNorm cannot normalise a batch of one sample in training mode; this is usually the last "
                "batch of an epoch: use drop_last=True or a batch size that divides the data set.")
    msg += f" (PyTorch: {_first_line(err)})"
    return LayerInputError(msg, layer, got, expected)


def class_count(out: torch.Tensor, y: torch.Tensor) -> int | None:
    """How many classes ``out`` scores if ``y`` holds class labels for it; None when ``y`` is not labels for it."""
    if not isinstance(out, torch.Tensor) or not isinstance(y, torch.Tensor):
        return None
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool or out.ndim == 0:
        return None
    if out.ndim >= 2 and out.shape[1] > 1 and tuple(y.shape) == (out.shape[0], *out.shape[2:]):
        return out.shape[1]  # (N, C) or (N, C, d1, ...) as cross_entropy takes them
    if out.ndim >= 2 and out.shape[-1] > 1 and tuple(y.shape) == tuple(out.shape[:-1]):
        return out.shape[-1]  # (N, T, C) with (N, T) labels, flattened inside the loss
    if (out.ndim == 1 or out.shape[-1] == 1) and y.numel() == out.shape[0]:
        return 2  # one logit per sample: labels 0/1
    return None


def check_batch(x: Any, y: Any, out: Any, all_targets: torch.Tensor | None = None, where: str = "train") -> None:
    """The first batch's checks, with one host sync: finite inputs, labels in range (for all labels when the
    loader holds them as one tensor, so a bad label anywhere is found before training starts)."""
    checks: list[torch.Tensor] = []
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        checks.append((~torch.isfinite(x)).sum())
    classes = class_count(out, y)
    labels = all_targets if (classes is not None and isinstance(all_targets, torch.Tensor)
                             and not all_targets.is_floating_point()) else y
    if classes is not None:
        checks.append(_bad_labels(labels, classes, out).sum())
    if not checks:
        return
    counts = torch.stack([c.to(torch.int64).cpu() for c in checks]).tolist()  # the one sync
    if isinstance(x, torch.Tensor) and x.is_floating_point() and counts.pop(0):
        raise NonFiniteInputError(f"{where} data: the first batch x = {describe(x)} holds {_nonfinite_text(x)}; "
                                  f"clean the data (e.g. torch.nan_to_num, or drop those samples) before fit")
    if classes is not None and counts[0]:
        raise _label_error(labels, classes, out, where, whole=labels is not y)


def _class_axis(out: torch.Tensor) -> bool:
    """True when ``out`` holds one score per class (cross_entropy, which accepts IGNORE_INDEX labels)."""
    return out.ndim >= 2 and (out.shape[1] > 1 or out.shape[-1] > 1)


def _bad_labels(y: torch.Tensor, classes: int, out: torch.Tensor) -> torch.Tensor:
    ok = (y >= 0) & (y < classes)
    if _class_axis(out):
        ok |= y == IGNORE_INDEX
    return ~ok


def _label_error(y: torch.Tensor, classes: int, out: torch.Tensor, where: str, whole: bool) -> LabelError:
    bad = _bad_labels(y, classes, out).reshape(-1)
    first = int(bad.nonzero()[0, 0])
    value = int(y.reshape(-1)[first])
    valid = f"0..{classes - 1}" + (f" (or {IGNORE_INDEX}, cross_entropy's ignore_index)" if _class_axis(out) else "")
    scope = "the labels y" if whole else "the first batch's labels y"
    outputs = "one logit per sample" if out.ndim == 1 or out.shape[-1] == 1 else f"{classes} classes"
    return LabelError(f"{where} data: labels out of range: {scope} hold {value} at index {first} "
                      f"({int(bad.sum())} of {bad.numel()} out of range, min {int(y.min())}, max {int(y.max())}), "
                      f"but the model outputs {outputs} (output {describe(out)}), so valid labels are "
                      f"{valid}. Check num_classes / out_features, or remap the labels.")


def _nonfinite_text(t: torch.Tensor) -> str:
    flat = t.reshape(t.shape[0], -1) if t.ndim > 1 else t.reshape(-1, 1)
    bad = ~torch.isfinite(flat).all(dim=1)
    first = int(bad.nonzero()[0, 0])
    nans, infs = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    return f"{nans} NaN and {infs} inf values in {int(bad.sum())} samples (the first is sample {first})"


def data_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(x, y) when the loader holds the whole data set as two tensors (TensorLoader, a shard, a TensorDataset)."""
    data = getattr(data, "loader", data)  # a distributed shard of a TensorLoader
    x, y = getattr(data, "x", None), getattr(data, "y", None)
    if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
        return x, y
    tensors = getattr(getattr(data, "dataset", None), "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) >= 2 and all(isinstance(t, torch.Tensor) for t in tensors):
        return tensors[0], tensors[-1]
    return None


def find_nonfinite(data: Any, where: str = "train") -> str | None:
    """After a NaN/inf loss: which samples of the data hold NaN/inf, if the data can be scanned (tensors, or a
    list of batches); None when the data are finite or cannot be scanned again."""
    tensors = data_tensors(data)
    if tensors is not None:
        for name, t in zip(("x", "y"), tensors):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"the {where} data's {name} holds {_nonfinite_text(t)}"
        return None
    if isinstance(data, (list, tuple)):
        for i, batch in enumerate(data):
            for name, t in zip(("x", "y"), batch):
                if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return f"batch {i} of the {where} data: its {name} holds {_nonfinite_text(t)}"
    return None


def loss_error(loss_fn: Any, out: Any, y: Any, err: BaseException, where: str = "train") -> BaseException:
    """A BatchError for ``loss_fn(out, y)`` failing: shapes, dtypes and the usual fix (labels are checked first)."""
    classes = class_count(out, y) if isinstance(out, torch.Tensor) else None
    if classes is not None and bool(_bad_labels(y, classes, out).any()):
        return _label_error(y, classes, out, where, whole=False)
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    msg = f"loss_fn {name}(out, y) failed with out = {describe(out)} and y = {describe(y)}"
    if isinstance(out, torch.Tensor) and isinstance(y, torch.Tensor):
        if out.shape[:1] != y.shape[:1] and out.ndim and y.ndim:
            msg += f"; the batch sizes differ ({out.shape[0]} outputs, {y.shape[0]} targets)"
        elif y.is_floating_point() and out.ndim == 2 and y.ndim == 1 and out.shape[1] > 1:
            msg += "; class labels for cross_entropy must be integers (y.long()), not floats"
        elif not y.is_floating_point() and out.is_floating_point() and out.shape == y.shape:
            msg += "; this loss compares with float targets: pass y.float()"
    return BatchError(f"{where} data: {msg} (PyTorch: {_first_line(err)})")
