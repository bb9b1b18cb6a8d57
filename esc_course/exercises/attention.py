"""Week 10 exercises: the causal mask, scaled dot-product attention, and splitting a width into heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from esc_course.exercises._cases import randn
from esc_course.exercises.core import Case, Exercise


def causal_mask(t):
    """A (t, t) bool tensor, True where query i may attend to key j: j <= i (the lower triangle, diagonal
    included)."""
    # BEGIN SOLUTION
    return torch.ones(t, t, dtype=torch.bool).tril()
    # END SOLUTION


def _mask_cases() -> list[Case]:
    hint = "query i 는 자기 자신과 과거 (j <= i) 만 봅니다: 대각선 (diagonal) 을 포함한 아래 삼각형 (lower triangle)."
    return [Case(f"t = {t}", (t,), torch.ones(t, t, dtype=torch.bool).tril(), hint) for t in (1, 2, 3, 5, 8)]


def scaled_dot_product_attention(q, k, v, mask):
    """q (..., T, d), k (..., S, d), v (..., S, dv); mask a bool (T, S) tensor (True = may attend) or None.
    Return softmax(q k^T / sqrt(d), masked positions -inf) v, shape (..., T, dv), as
    torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)."""
    # BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v
    # END SOLUTION


def _sdpa_cases() -> list[Case]:
    def case(name, q, k, v, mask, hint=""):
        return Case(name, (q, k, v, mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask), hint,
                    rtol=1e-4, atol=1e-5)
    scale = "점수를 sqrt(d) 로 나누세요 (d = q 의 마지막 축 크기): 나누지 않으면 softmax 가 한 칸에 몰립니다."
    axis = "softmax 는 key 축 (마지막 축, dim=-1) 으로: 각 query 의 가중치가 합 1."
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    return [
        case("one head, d = 4, no mask (scaled by sqrt(d))", randn(1, 3, 4, seed=1) * 3, randn(1, 3, 4, seed=2) * 3,
             randn(1, 3, 2, seed=3), None, scale),
        case("T != S: 2 queries, 5 keys (softmax over keys)", randn(2, 2, 6, seed=4), randn(2, 5, 6, seed=5),
             randn(2, 5, 3, seed=6), None, axis),
        case("causal mask (True = may attend)", randn(1, 2, 4, 8, seed=7), randn(1, 2, 4, 8, seed=8),
             randn(1, 2, 4, 8, seed=9), causal,
             "mask 가 True 인 곳만 봅니다: 점수를 ~mask 자리에서 -inf 로 (masked_fill(~mask, -inf))."),
        case("batch 1, one query", randn(1, 1, 5, seed=10), randn(1, 7, 5, seed=11), randn(1, 7, 5, seed=12), None),
        case("float64, 3 heads", randn(2, 3, 5, 4, seed=13, dtype=torch.float64),
             randn(2, 3, 5, 4, seed=14, dtype=torch.float64), randn(2, 3, 5, 4, seed=15, dtype=torch.float64), None),
        case("zeros q: uniform weights, the mean of v", torch.zeros(1, 3, 4), randn(1, 6, 4, seed=16),
             randn(1, 6, 2, seed=17), None),
    ]


def split_heads(x, num_heads):
    """x (B, T, E) -> (B, num_heads, T, E // num_heads): each head gets its own consecutive E // num_heads features
    of every position, as torch.nn.MultiheadAttention splits its projections."""
    # BEGIN SOLUTION
    b, t, e = x.shape
    return x.view(b, t, num_heads, e // num_heads).transpose(1, 2)
    # END SOLUTION


def _split_cases() -> list[Case]:
    def case(name, x, h, hint=""):
        b, t, e = x.shape
        return Case(name, (x, h), x.reshape(b, t, h, e // h).permute(0, 2, 1, 3), hint)
    order = ("먼저 (B, T, H, E/H) 로 나눈 뒤 축 1 과 2 를 바꾸세요 (transpose(1, 2)): (B, H, T, E/H) 로 바로 view 하면 "
             "위치와 특성이 섞입니다.")
    return [
        case("B=1, T=3, E=4, 2 heads", torch.arange(12.0).view(1, 3, 4), 2, order),
        case("one head: only a new axis", randn(2, 5, 6, seed=1), 1),
        case("B=2, T=4, E=12, 3 heads", randn(2, 4, 12, seed=2), 3, order),
        case("float64, T=1", randn(3, 1, 8, seed=3, dtype=torch.float64), 4),
        case("zeros", torch.zeros(1, 2, 6), 3),
    ]


EXERCISES = [
    Exercise("week10.causal_mask", causal_mask,
             "길이 t 의 causal mask 를 만드세요: query i 가 key j 를 볼 수 있으면 True (j <= i).",
             "Build the causal mask of length t: True where query i may attend to key j (j <= i).",
             _mask_cases, "torch.ones(t, t, dtype=torch.bool) 의 아래 삼각형 (tril)."),
    Exercise("week10.scaled_dot_product_attention", scaled_dot_product_attention,
             "Scaled dot-product attention 을 직접 쓰세요: softmax(q k^T / sqrt(d) + mask) v.",
             "Write scaled dot-product attention: softmax(q k^T / sqrt(d) + mask) v.",
             _sdpa_cases, "scores = q @ k.transpose(-2, -1) / sqrt(d); ~mask 자리는 -inf; softmax(dim=-1); @ v."),
    Exercise("week10.split_heads", split_heads,
             "(B, T, E) 를 head 별 (B, H, T, E/H) 로 나누세요 (multi-head attention 의 첫 단계).",
             "Split (B, T, E) into heads, (B, H, T, E/H): the first step of multi-head attention.",
             _split_cases, "x.view(B, T, H, E // H).transpose(1, 2)"),
]
