"""A small causal Transformer language model (decoder-only, GPT-style) built from the course's own blocks.

ids (B, T) -> token embedding + position (learned, sinusoidal or none) -> pre-norm blocks with causal self-attention
-> LayerNorm -> linear over the vocabulary -> logits (B, T, V). The blocks are ``esc_course.scratch.attention``'s
``TransformerBlock`` with ``fused=True``: attention through ``torch.nn.functional.scaled_dot_product_attention``,
which takes the flash / memory-efficient kernels on CUDA where they apply and the same math on the CPU.
``attention_maps`` runs the written-out attention instead, to return what each head looks at.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from esc_course.models.sampling import check_sampling, next_id
from esc_course.scratch.attention import TransformerBlock

POSITIONS = ("learned", "sinusoidal", "none")


def sinusoidal_positions(context: int, d_model: int) -> torch.Tensor:
    """(context, d_model) PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...) (Vaswani et al. 2017)."""
    pos = torch.arange(context, dtype=torch.float32)[:, None]                       # (T, 1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(context, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return pe


class TransformerLM(nn.Module):
    """Causal Transformer language model with explicit sizes.

    Args:
        vocab_size: number of token ids.
        context: the longest input it accepts (positions are defined up to it).
        d_model, n_heads, n_layers: width, heads per block, blocks.
        dim_feedforward: hidden width of each block's feed-forward part (default 4 d_model).
        dropout: dropout rate in the blocks and after the embedding.
        positions: "learned" (an embedding per position), "sinusoidal" (fixed) or "none" (no order information:
            causal attention alone then sees a set, except for how many tokens come before).
        tie_weights: the output layer shares the token embedding's matrix (Press and Wolf 2017).
    """

    def __init__(self, vocab_size: int, *, context: int, d_model: int = 64, n_heads: int = 4, n_layers: int = 2,
                 dim_feedforward: int | None = None, dropout: float = 0.0, positions: str = "learned",
                 tie_weights: bool = False):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("context", context), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if positions not in POSITIONS:
            raise ValueError(f"unknown positions {positions!r}; valid: {', '.join(POSITIONS)}")
        self.vocab_size, self.context, self.positions = vocab_size, context, positions
        self.embed = nn.Embedding(vocab_size, d_model)
        if positions == "learned":
            self.pos = nn.Embedding(context, d_model)
        elif positions == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_positions(context, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, dim_feedforward or 4 * d_model, dropout=dropout, activation="gelu",
                             fused=True) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_weights:
            self.head.weight = self.embed.weight
        self.apply(self._init)
        self.scale = 1.0
        if positions == "sinusoidal":  # Vaswani et al.: embeddings x sqrt(d) ~ N(0, 1), the size of the fixed table
            nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
            self.scale = math.sqrt(d_model)

    @staticmethod
    def _init(m: nn.Module) -> None:
        """N(0, 0.02) for linear and embedding weights, zero biases (GPT-2's initialisation)."""
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def _positions(self, t: int, device) -> torch.Tensor | float:
        if self.positions == "learned":
            return self.pos(torch.arange(t, device=device))                        # (T, C)
        if self.positions == "sinusoidal":
            return self.pos_table[:t]
        return 0.0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(f"TransformerLM expects int64 ids of shape (B, T), got {ids.dtype} {tuple(ids.shape)}")
        B, T = ids.shape
        if T > self.context:
            raise ValueError(f"input length {T} is longer than the model's context={self.context}")
        x = self.drop(self.embed(ids) * self.scale + self._positions(T, ids.device))             # (B, T, C)
        for block in self.blocks:
            x = block(x, is_causal=True)                                            # (B, T, C)
        return self.head(self.norm(x))                                              # (B, T, V)

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Per block, the attention weights of every head: a list of (B, H, T, T) tensors (rows sum to 1),
        computed by the written-out attention on the same weights."""
        was_training = self.training
        self.eval()
        saved = [b.self_attn.fused for b in self.blocks]
        try:
            for b in self.blocks:
                b.self_attn.fused = False
            self(ids)
            return [b.self_attn.head_weights for b in self.blocks]
        finally:
            for b, fused in zip(self.blocks, saved):
                b.self_attn.fused = fused
            self.train(was_training)

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, n: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``ids`` (T,) followed by ``n`` sampled ids: each next id from softmax(logits / temperature) of the last
        ``context`` ids (0 = the most likely id)."""
        check_sampling(n, temperature)
        was_training = self.training
        self.eval()
        try:
            out = ids.reshape(-1).to(self.embed.weight.device)
            for _ in range(n):
                last = self(out[-self.context:][None])[0, -1]                       # (V,)
                out = torch.cat([out, next_id(last, temperature, generator)])
            return out
        finally:
            self.train(was_training)
