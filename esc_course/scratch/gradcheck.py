"""Central-difference gradient check: is a backward pass right?

    report = gradcheck(lambda x, w: (x @ w).tanh().sum(), [x, w])
    assert report.passed, report

The numerical derivative (f(x + h) - f(x - h)) / 2h has error O(h^2); in float64 with h = 1e-6 the relative
error of a correct analytic gradient is typically below 1e-7, while a wrong one is off by order 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class GradcheckReport:
    passed: bool
    max_rel_error: float
    rel_errors: list[float] = field(default_factory=list)  # per input
    tolerance: float = 1e-5

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        per = ", ".join(f"input {i}: {e:.2e}" for i, e in enumerate(self.rel_errors))
        return f"gradcheck {verdict}: max relative error {self.max_rel_error:.2e} (tolerance {self.tolerance:.0e}); {per}"


def numerical_grad(f: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], eps: float = 1e-6):
    """d sum(f) / d input for every input, by central differences (float64 copies, inputs unchanged)."""
    xs = [x.detach().double().clone() for x in inputs]
    grads = []
    with torch.no_grad():
        for x in xs:
            g = torch.zeros_like(x)
            flat, gflat = x.view(-1), g.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + eps
                plus = f(*xs).sum().item()
                flat[i] = old - eps
                minus = f(*xs).sum().item()
                flat[i] = old
                gflat[i] = (plus - minus) / (2 * eps)
            grads.append(g)
    return grads


def analytic_grad(f: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]):
    """d sum(f) / d input for every input, by autograd (your backward), in float64."""
    xs = [x.detach().double().clone().requires_grad_(True) for x in inputs]
    out = f(*xs).sum()
    grads = torch.autograd.grad(out, xs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]


def gradcheck(f: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], eps: float = 1e-6,
              tolerance: float = 1e-5) -> GradcheckReport:
    """Compare autograd's gradient of ``f(*inputs).sum()`` with central differences.

    The relative error per input is |analytic - numerical| / max(|analytic| + |numerical|, 1e-8), maximised
    over elements. Works on a student's own ``torch.autograd.Function`` used inside ``f``.
    """
    if not inputs:
        raise ValueError("gradcheck needs at least one input tensor")
    num = numerical_grad(f, inputs, eps)
    ana = analytic_grad(f, inputs)
    errors = []
    for a, n in zip(ana, num):
        denom = (a.abs() + n.abs()).clamp_min(1e-8)
        errors.append(float(((a - n).abs() / denom).max()) if a.numel() else 0.0)
    worst = max(errors)
    return GradcheckReport(passed=worst <= tolerance, max_rel_error=worst, rel_errors=errors, tolerance=tolerance)
