"""Drawing the next token from a language model's logits (shared by CharLM.sample and TransformerLM.generate)."""

from __future__ import annotations

import torch


def check_sampling(n: int, temperature: float, what: str = "ids") -> None:
    """Refuse a negative or non-integer count and a negative temperature, naming the argument."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer ({what} to generate), got {n!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = always the most likely one), got {temperature}")


def next_id(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One id (a (1,) int64 tensor on the logits' device) from the last position's logits (V,): drawn from
    softmax(logits / temperature), below 1 sharper, above 1 flatter; temperature 0 takes the most likely id."""
    if temperature == 0:
        return logits.argmax().view(1)
    probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()  # the generator is a CPU one
    return torch.multinomial(probs, 1, generator=generator).to(logits.device)
