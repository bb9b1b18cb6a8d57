"""Metrics as pure functions of tensors: ``fn(output, target) -> 0-d tensor`` (the batch mean).

They stay on the device, so the training loop can accumulate them without a host sync per step. A metric may also
carry ``fn.batch_sum``, a function giving the batch's *sum* instead of its mean (for accuracy: the number of correct
predictions); the training loop then adds those up and divides once per epoch, which is a few tensor operations
per step cheaper (on a tiny MLP the metric was a third of what fit added to the raw loop).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def predictions(output: torch.Tensor) -> torch.Tensor:
    """Class predictions from logits: argmax over classes, or ``logit > 0`` for one output unit."""
    if output.ndim == 1 or output.shape[-1] == 1:
        return (output.reshape(output.shape[0], -1)[:, 0] > 0).long()
    return output.argmax(dim=-1)


def _hits(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Boolean tensor: which predictions equal their targets (targets may be integer or 0./1. floats)."""
    pred = predictions(output)
    if target.shape != pred.shape:
        target = target.reshape(pred.shape)
    return pred.eq(target)


def correct(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``accuracy`` times the batch size: the number of correct predictions (a 0-d float32 tensor, exact below
    2**24, so that the epoch's per-step values stack without a conversion). For sequence
    outputs, (B, T, C) logits with (B, T) targets, each of the B samples counts the share of its positions that are
    right, so that the sum over batches divided by the number of samples is the accuracy over all positions."""
    if output.ndim == 2 and target.ndim == 1:  # the usual shapes, 4 operator calls
        if output.shape[1] > 1:  # (N, C) logits
            return output.argmax(dim=1).eq(target).sum(dtype=torch.float32)
        return output.squeeze(1).gt(0).eq(target).sum(dtype=torch.float32)  # one logit per sample, (N, 1): positive means class 1
    hits = _hits(output, target)
    if hits.ndim > 1:
        return hits.sum(dtype=torch.float32) / (hits.numel() // hits.shape[0])
    return hits.sum(dtype=torch.float32)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of correct class predictions; ``output`` are logits (N, C) or (N,)/(N, 1) for two classes."""
    return torch.mean(_hits(output, target), dtype=torch.float32)


accuracy.batch_sum = correct  # type: ignore[attr-defined]
correct.graph_free = True  # type: ignore[attr-defined] # no autograd graph: the training loop skips a detach


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output.float() - target.float().reshape(output.shape)).pow(2).mean()


def mae(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output.float() - target.float().reshape(output.shape)).abs().mean()


METRICS: dict[str, Metric] = {"accuracy": accuracy, "mse": mse, "mae": mae}


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(sorted(METRICS))}") from None


def resolve_metrics(metrics: Sequence[str | Metric] | None) -> dict[str, Metric]:
    """Names or callables -> {name: fn} (a dict is taken as already resolved)."""
    if isinstance(metrics, dict):
        return metrics
    out: dict[str, Metric] = {}
    for m in metrics or ():
        if isinstance(m, str):
            out[m] = get_metric(m)
        elif callable(m):
            out[getattr(m, "__name__", f"metric{len(out)}")] = m
        else:
            raise TypeError(f"metrics must hold names or callables, got {m!r}")
    return out


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    idx = target.long().reshape(-1) * num_classes + pred.long().reshape(-1)
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)
