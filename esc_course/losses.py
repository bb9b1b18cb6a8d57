"""Loss functions written out (MSE, Huber, cross-entropy, binary cross-entropy, KL divergence), with the output
activations they pair with (softmax, sigmoid). tests/test_losses.py checks each against torch.nn.functional.

The slides' pairs: regression → no output activation + MSE, L = 1/n Σ (y - ŷ)²; classification → softmax +
cross-entropy, L = -Σ y log ŷ; binary classification → sigmoid + binary cross-entropy. And
D_KL(p ‖ q) = Σ p log(p / q) = H(p, q) - H(p): cross-entropy is KL divergence plus the entropy of the labels,
which is 0 for one-hot labels, so minimising cross-entropy minimises KL (see ``cross_entropy_decomposition``).

Every loss takes ``reduction``: "mean" (default, as torch), "sum" or "none".
"""

from __future__ import annotations

import torch

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")


def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """e^z_j / Σ_k e^z_k. Subtracting max z first changes nothing mathematically and keeps e^z from overflowing."""
    z = logits - logits.amax(dim=dim, keepdim=True)
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log softmax(z) = z - log Σ_k e^z_k, computed without forming softmax (no log of a rounded-off 0)."""
    z = logits - logits.amax(dim=dim, keepdim=True)
    return z - z.exp().sum(dim=dim, keepdim=True).log()


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^-x); for x < 0 written as e^x / (1 + e^x) so e^-x cannot overflow."""
    e = torch.exp(-x.abs())  # in (0, 1]
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error 1/n Σ (y - ŷ)²: the regression loss."""
    return _reduce((pred - target) ** 2, reduction)


def huber(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Huber loss: r²/2 for |r| ≤ δ, δ (|r| - δ/2) beyond: MSE near 0, linear (outlier-tolerant) far away."""
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta!r}")
    r = (pred - target).abs()
    return _reduce(torch.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)), reduction)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-Σ_j p_j log softmax(z)_j per sample, from logits (N, C).

    ``target`` is class indices (N,) (one-hot labels: the sum is -log of the true class's probability) or a
    probability distribution (N, C) per sample (soft labels, label smoothing, distillation).
    """
    logq = log_softmax(logits, dim=-1)
    if target.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        if target.shape != logits.shape[:-1]:
            raise ValueError(f"class-index targets must have shape {tuple(logits.shape[:-1])}, got "
                             f"{tuple(target.shape)}")
        per_sample = -logq.gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
    else:
        if target.shape != logits.shape:
            raise ValueError(f"probability targets must have the logits' shape {tuple(logits.shape)}, got "
                             f"{tuple(target.shape)}")
        per_sample = -(target * logq).sum(dim=-1)
    return _reduce(per_sample, reduction)


def binary_cross_entropy(prob: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-[y log p + (1 - y) log(1 - p)] for probabilities p (after a sigmoid). log is clamped at -100, as torch."""
    logp, log1mp = prob.log().clamp_min(-100), (1 - prob).log().clamp_min(-100)
    return _reduce(-(target * logp + (1 - target) * log1mp), reduction)


def binary_cross_entropy_with_logits(logits: torch.Tensor, target: torch.Tensor,
                                     reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy of sigmoid(z), computed from z: max(z, 0) - z y + log(1 + e^-|z|).

    The same value as binary_cross_entropy(sigmoid(z), y), but exact where sigmoid(z) rounds to 0 or 1.
    """
    return _reduce(logits.clamp_min(0) - logits * target + torch.log1p(torch.exp(-logits.abs())), reduction)


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """H(p) = -Σ p log p per distribution, with 0 log 0 = 0: 0 for one-hot labels, log C for uniform ones."""
    return -torch.xlogy(p, p).sum(dim=dim)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """D_KL(p ‖ q) = Σ_j p_j (log p_j - log q_j) per row of distributions (N, C); "mean" averages over rows.

    Not symmetric and not a true distance, but ≥ 0 and 0 exactly when p = q. torch's equivalent is
    ``F.kl_div(q.log(), p, reduction="batchmean")`` (note the order: log q first).
    """
    per_row = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)
    return _reduce(per_row, reduction)


def cross_entropy_decomposition(logits: torch.Tensor, target_probs: torch.Tensor) -> dict[str, float]:
    """The numeric check of H(p, q) = D_KL(p ‖ q) + H(p), with q = softmax(logits), averaged over the rows."""
    q = softmax(logits)
    ce = cross_entropy(logits, target_probs)
    kl = kl_divergence(target_probs, q)
    h = entropy(target_probs).mean()
    return {"cross_entropy": float(ce), "kl_divergence": float(kl), "label_entropy": float(h),
            "kl_plus_entropy": float(kl + h), "gap": float((ce - (kl + h)).abs())}


# name -> loss(pred, target): the losses students choose between by name
LOSSES = {
    "mse": mse,
    "huber": huber,
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "kl_divergence": kl_divergence,
}


def get_loss(name: str):
    """A loss function by name; an unknown name lists the valid ones."""
    key = str(name).lower().replace("-", "_")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[key]
