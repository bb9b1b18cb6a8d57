"""Attention from scratch: scaled dot-product attention, multi-head attention and a pre-norm Transformer block.

Vaswani et al. 2017, "Attention Is All You Need":

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

where M is 0 where a query may look at a key and -inf where it may not (a causal mask hides the future; a padding
mask hides padded keys). Multi-head attention projects the input into ``num_heads`` smaller query/key/value spaces,
attends in each, concatenates and projects back.

The modules use the parameter names and shapes of ``torch.nn.MultiheadAttention`` (``in_proj_weight`` (3E, E),
``in_proj_bias`` (3E,), ``out_proj``) and ``torch.nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``,
``linear2``, ``norm1``, ``norm2``), so ``mine.load_state_dict(theirs.state_dict())`` gives the same outputs and
gradients (the tests check both). ``fused=True`` computes the same attention with
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on CUDA where available):
that is what the course's Transformer language model trains with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(t: int, s: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, S) boolean mask, True where query i may attend to key j (j <= i + S - T): the lower triangle."""
    s = t if s is None else s
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=s - t)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 attn_mask: torch.Tensor | None = None, is_causal: bool = False,
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, written out; returns (output, attention weights).

    q (..., T, d), k (..., S, d), v (..., S, d_v) -> output (..., T, d_v), weights (..., T, S).
    ``attn_mask``: boolean (True = may attend, as torch's SDPA) or additive float, broadcast to (..., T, S).
    ``is_causal``: hide keys after each query (the lower-triangular mask), as torch's SDPA.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                     # (..., T, S)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = scores.softmax(dim=-1)                                     # (..., T, S), each row sums to 1
    return weights @ v, weights                                          # (..., T, d_v)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over (B, T, E) inputs (batch first), parameters as ``torch.nn.MultiheadAttention``.

    forward(query, key, value, key_padding_mask=None, attn_mask=None, is_causal=False) -> (output, weights):
    ``key_padding_mask`` (B, S) True where the key is padding (ignored), as torch; ``attn_mask`` (T, S) boolean True
    where attention is NOT allowed, as torch's MultiheadAttention, or additive float; weights are averaged over the
    heads, (B, T, S) (None when ``fused``).
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.head_dim, self.fused = embed_dim, num_heads, embed_dim // num_heads, fused
        self.head_weights: torch.Tensor | None = None  # (B, H, T, S) of the last unfused forward
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))   # W_q, W_k, W_v stacked
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as torch.nn.MultiheadAttention
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor, part: int) -> torch.Tensor:
        """(B, T, E) -> the part-th projection (0 query, 1 key, 2 value) split into heads: (B, H, T, E/H)."""
        B, T, E = x.shape
        w = self.in_proj_weight[part * E:(part + 1) * E]
        b = None if self.in_proj_bias is None else self.in_proj_bias[part * E:(part + 1) * E]
        return F.linear(x, w, b).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = query if key is None else key
        value = key if value is None else value
        if query.ndim != 3:
            raise ValueError(f"query must be (batch, length, embed_dim), got shape {tuple(query.shape)}")
        B, T, E = query.shape
        if E != self.embed_dim:
            raise ValueError(f"query has embed_dim {E}, the module expects {self.embed_dim}")
        q, k, v = self._heads(query, 0), self._heads(key, 1), self._heads(value, 2)  # (B, H, T|S, D)
        S = k.shape[2]
        allowed = None  # (B or 1, 1, T, S) boolean, True = may attend, or an additive float mask
        if attn_mask is not None:
            allowed = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
            allowed = allowed.reshape(1, 1, T, S)
        if key_padding_mask is not None:
            keep = (~key_padding_mask.bool()).reshape(B, 1, 1, S)
            allowed = keep if allowed is None else (allowed & keep if allowed.dtype == torch.bool
                                                    else allowed.masked_fill(~keep, float("-inf")))
        if self.fused:
            if is_causal and allowed is not None:  # SDPA takes one or the other
                causal = causal_mask(T, S, query.device).reshape(1, 1, T, S)
                allowed = allowed & causal if allowed.dtype == torch.bool else allowed.masked_fill(~causal, -math.inf)
                is_causal = False
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal)
            weights = None
        else:
            out, weights = scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal)
            self.head_weights = weights.detach()                            # (B, H, T, S), for drawing
            weights = weights.mean(dim=1)                                   # (B, T, S), averaged over heads
        out = out.transpose(1, 2).reshape(B, T, E)                          # heads concatenated: (B, T, E)
        return self.out_proj(out), weights


class TransformerBlock(nn.Module):
    """A pre-norm Transformer encoder block (Xiong et al. 2020), as ``torch.nn.TransformerEncoderLayer(...,
    norm_first=True, batch_first=True)``:

        x = x + SelfAttention(LayerNorm(x));  x = x + FFN(LayerNorm(x)),  FFN = Linear -> act -> Linear

    forward(x (B, T, E), src_mask=None, src_key_padding_mask=None, is_causal=False) -> (B, T, E). Dropout after the
    attention, inside and after the feed-forward part (rate ``dropout``), as torch.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, bias: bool = True, fused: bool = False):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"unknown activation {activation!r}; valid activations: relu, gelu")
        self.self_attn = MultiHeadAttention(d_model, nhead, bias=bias, fused=fused)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu
        self.last_weights: torch.Tensor | None = None  # (B, T, T) head-averaged weights of the last forward

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        h = self.norm1(x)
        attended, self.last_weights = self.self_attn(h, h, h, key_padding_mask=src_key_padding_mask,
                                                     attn_mask=src_mask, is_causal=is_causal)
        x = x + self.dropout1(attended)                                                # (B, T, E)
        ff = self.linear2(self.dropout(self.activation(self.linear1(self.norm2(x)))))  # (B, T, E)
        return x + self.dropout2(ff)
