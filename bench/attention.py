"""Tokens per second of the course's written-out attention against torch's fused scaled_dot_product_attention.

The same ``esc_course.scratch.attention.MultiHeadAttention`` module (same weights) runs causal self-attention
forward + backward at a few (B, T, C) shapes, once with the attention written out (``fused=False``: the (B, H, T, T)
scores materialised, softmax, matmul) and once through ``F.scaled_dot_product_attention`` (``fused=True``: on
CUDA the flash / memory-efficient kernels; on the CPU its own fused kernel). The two alternate round by round; the
ratio is fused tokens/s over written-out tokens/s (medians), so > 1 means the fused kernel is faster.
"""

from __future__ import annotations

import torch

from bench.timing import interleaved, median, median_interval
from esc_course.scratch.attention import MultiHeadAttention

SHAPES = [(16, 128, 128, 4), (4, 512, 128, 4), (1, 1024, 256, 8)]   # (B, T, C, heads)
QUICK_SHAPES = [(2, 32, 32, 2), (1, 64, 32, 2)]


def _step(module: MultiHeadAttention, x: torch.Tensor, device) -> list[float]:
    import time

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out, _ = module(x, is_causal=True)
    out.sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return [time.perf_counter() - start]


def run(device, quick: bool = False) -> dict:
    rows = {}
    for B, T, C, H in QUICK_SHAPES if quick else SHAPES:
        torch.manual_seed(0)
        scratch = MultiHeadAttention(C, H, fused=False).to(device)
        fused = MultiHeadAttention(C, H, fused=True).to(device)
        fused.load_state_dict(scratch.state_dict())
        x = torch.randn(B, T, C, device=device, requires_grad=True)
        times = interleaved({"scratch": lambda m=scratch, x=x: _step(m, x, device),
                             "fused": lambda m=fused, x=x: _step(m, x, device)},
                            rounds=3 if quick else 20, warmup=1)
        tokens = B * T
        ratio = [s / f for s, f in zip(times["scratch"], times["fused"])]
        low, high = median_interval(ratio)
        rows[f"B{B}_T{T}_C{C}_H{H}"] = {
            "scratch_tokens_per_s": tokens / median(times["scratch"]),
            "fused_tokens_per_s": tokens / median(times["fused"]),
            "ratio": median(ratio), "ratio_low": low, "ratio_high": high}
    return {"shapes": rows}


def report(result: dict) -> str:
    lines = [f"{'shape':<22} {'written out tok/s':>18} {'fused tok/s':>14} {'fused / written out':>20}"]
    for name, r in result["shapes"].items():
        lines.append(f"{name:<22} {r['scratch_tokens_per_s']:>18,.0f} {r['fused_tokens_per_s']:>14,.0f} "
                     f"{r['ratio']:>8.2f}x ({r['ratio_low']:.2f}-{r['ratio_high']:.2f})")
    return "\n".join(lines)
